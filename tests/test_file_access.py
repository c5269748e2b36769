"""One file-access policy for the workspace: owner-only by default, whatever umask the app was started with."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from core.accounts.audit import EventType, record_event
from core.accounts.auth import cookie_key
from core.platform.config import ConfigError
from core.training.housekeeping import clean_leftovers
from core.platform.logs import configure_logging
from core.platform.store import Store, default_database_url
from core.platform.workspace import Workspace
from tests.conftest import ANALYST, save_demo_version, train_runs


@pytest.fixture
def started_with_a_loose_umask():
    """The app started from a shell whose umask lets everyone read new files (the usual 022)."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def modes(root: Path) -> dict[str, int]:
    """Every path under ``root`` (and root itself) with its permission bits."""
    return {str(p.relative_to(root)) or ".": stat.S_IMODE(p.lstat().st_mode) for p in [root, *root.rglob("*")]}


def fill_workspace(workspace: Workspace, config) -> None:
    """What a working day writes: database (with WAL), the cookie key, a log, a dataset, a trained run."""
    store = Store(default_database_url(workspace.root))
    record_event(store, EventType.SIGN_IN, ANALYST, "s1")
    cookie_key(workspace.root)
    configure_logging(workspace)
    logging.getLogger("core.test").warning("written")
    version = save_demo_version(workspace, config, max_rows=200)
    train_runs(workspace, config, version, kinds=("tfidf_nb",))


def test_everything_the_app_writes_is_readable_by_its_owner_only(config, started_with_a_loose_umask):
    """studio.db was 0644 while run files were 0600: each writer had its own idea."""
    workspace = config.workspace()
    fill_workspace(workspace, config)
    found = modes(workspace.root)
    assert any(name.startswith("runs/") and name.endswith(".json") for name in found)  # the walk saw the run
    assert any(name.startswith("datasets/") for name in found) and "studio.db-wal" in found
    wider = {name: oct(mode) for name, mode in found.items() if mode & 0o077}
    assert wider == {}


def test_a_workspace_from_before_is_tightened_at_start(config, started_with_a_loose_umask):
    workspace = config.workspace()
    loose_folder = workspace.datasets / "copied-in"
    loose_folder.mkdir(mode=0o755)
    (loose_folder / "data.jsonl").write_text("{}\n")
    os.chmod(loose_folder / "data.jsonl", 0o644)
    os.chmod(workspace.root, 0o755)
    clean_leftovers(workspace)  # what the app runs at start
    assert modes(loose_folder) == {".": 0o700, "data.jsonl": 0o600}
    assert stat.S_IMODE(workspace.root.stat().st_mode) == 0o700


def test_the_group_policy_lets_the_group_read_but_never_others(config_file, started_with_a_loose_umask):
    config = config_file('[storage]\nfile_access = "group"\n')
    workspace = config.workspace()
    fill_workspace(workspace, config)
    found = modes(workspace.root)
    assert found["studio.db"] == 0o640 and found["datasets/demo"] == 0o750  # (made before: left as it was)
    assert found["secrets/cookie_key"] == 0o600  # the key that signs sessions stays the owner's
    assert {name: oct(mode) for name, mode in found.items() if mode & 0o007} == {}


def test_an_unknown_policy_is_refused_with_the_choices(config_file):
    with pytest.raises(ConfigError, match="storage.file_access must be one of owner, group, got 'world'"):
        config_file('[storage]\nfile_access = "world"\n')
