"""The import contracts (.importlinter) hold, and they can fail: who may import whom is checked, not hoped."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(folder: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` on the project (or a copy of it) in ``folder``, with the project's contracts."""
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=folder, capture_output=True, text=True,
                          timeout=120, env={"PYTHONPATH": str(folder), "PATH": "/usr/bin:/bin"})


def test_the_contracts_are_kept() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_domain_package_importing_a_use_case_breaks_the_layers(tmp_path: Path) -> None:
    for name in ("core", "pages", ".importlinter"):
        source = ROOT / name
        (shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
         if source.is_dir() else shutil.copy(source, tmp_path / name))
    wrong = tmp_path / "core" / "data" / "split.py"
    wrong.write_text(wrong.read_text() + "\nfrom core.services.datasets import save_dataset  # noqa\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "core.data.split -> core.services.datasets" in result.stdout


@pytest.mark.parametrize("script", ["Home.py"])
def test_the_entry_script_imports_only_use_cases_and_presentation(script: str) -> None:
    """import-linter reads packages only; the one script at the top is read here."""
    allowed = ("core.services", "core.presentation", "pages")
    tree = ast.parse((ROOT / script).read_text())
    modules = [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module]
    modules += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    wrong = [m for m in modules if m.startswith("core") and not m.startswith(allowed)]
    assert not wrong, f"{script} imports {wrong}: go through a use case in core.services"
