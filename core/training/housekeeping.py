"""Removing what is no longer needed: leftovers of killed saves and runs, and runs an analyst deletes."""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from core.training.runs import MODEL_DIR, list_runs, run_folder
from core.platform.workspace import Workspace, tighten_tree

log = logging.getLogger(__name__)

#: A staging folder older than this belongs to a save that was killed (a live save takes seconds).
STAGING_MAX_AGE_S = 3600.0
#: What a run folder may hold only while its run trains.
TRAINING_LEFTOVERS = ("checkpoints", f".{MODEL_DIR}-staging")


@dataclass
class Cleaned:
    """What a clean-up removed, and how much disk it gave back."""

    paths: list[str] = field(default_factory=list)
    bytes: int = 0


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def _remove(path: Path, cleaned: Cleaned) -> None:
    cleaned.bytes += _size(path)
    shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    cleaned.paths.append(str(path))


def clean_leftovers(workspace: Workspace, now: float | None = None) -> Cleaned:
    """Old staging folders of killed saves, and checkpoints / model staging of runs no longer training;
    and every file left readable wider than the workspace's file-access policy allows is tightened."""
    now = time.time() if now is None else now
    cleaned = Cleaned()
    tightened = tighten_tree(workspace.root, workspace.access)
    if tightened:
        log.info("tightened the permissions of %d path(s) in the workspace to its %r policy", tightened,
                 workspace.access)
    if workspace.staging.is_dir():
        for entry in workspace.staging.iterdir():
            if now - entry.stat().st_mtime > STAGING_MAX_AGE_S:
                _remove(entry, cleaned)
    for record in list_runs(workspace):
        if record.state.finished:
            for name in TRAINING_LEFTOVERS:
                leftover = run_folder(workspace, record.run_id) / name
                if leftover.exists():
                    _remove(leftover, cleaned)
    if cleaned.paths:
        log.info("cleaned %d leftover(s), %.1f MB", len(cleaned.paths), cleaned.bytes / 1e6)
    return cleaned


