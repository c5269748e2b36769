"""Shared fixtures: every test gets its own workspace, never the repository's."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import CONFIG_ENV_VAR, WORKSPACE_ENV_VAR, AppConfig, load_config
from core.workspace import Workspace

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def isolated_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """Point the app at a temporary workspace for the duration of each test."""
    root = tmp_path / "workspace"
    monkeypatch.setenv(WORKSPACE_ENV_VAR, str(root))
    monkeypatch.delenv(CONFIG_ENV_VAR, raising=False)
    return Workspace(root).ensure()


@pytest.fixture
def config(isolated_workspace: Workspace) -> AppConfig:
    return load_config()


@pytest.fixture
def write_file(tmp_path: Path):
    """Write bytes or text to a file under the test's temporary folder."""

    def write(name: str, content: str | bytes) -> Path:
        path = tmp_path / "files" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_bytes(content)
        return path

    return write
