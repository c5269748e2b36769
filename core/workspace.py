"""The folders of a workspace and the atomic writes every module uses there."""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator


@dataclass(frozen=True)
class Workspace:
    """One workspace root and the fixed layout under it."""

    root: Path

    @property
    def datasets(self) -> Path:
        return self.root / "datasets"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def staging(self) -> Path:
        """Where folders are assembled before being renamed into place (same file system)."""
        return self.root / ".staging"

    def ensure(self) -> "Workspace":
        """Create the layout if missing; safe to call on every start."""
        for folder in (self.datasets, self.runs, self.models, self.logs, self.staging):
            folder.mkdir(parents=True, exist_ok=True)
        return self


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON so that readers see the old file or the new one, never a partial one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, ensure_ascii=False, indent=2, default=str)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> Any:
    """Read a JSON file written by :func:`write_json_atomic`."""
    with path.open(encoding="utf-8") as handle:
        return json.load(handle)


@contextmanager
def staged_folder(workspace: Workspace, destination: Path) -> Iterator[Path]:
    """Yield an empty staging folder; on success rename it to ``destination``.

    If the body raises, the staging folder is removed and ``destination`` is
    untouched, so a failed save never leaves a half-written folder behind.
    """
    workspace.staging.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{destination.name}-", dir=workspace.staging))
    try:
        yield staging
        destination.parent.mkdir(parents=True, exist_ok=True)
        if destination.exists():
            raise FileExistsError(f"{destination} already exists")
        try:
            os.rename(staging, destination)
        except OSError as error:  # another process renamed its folder there first
            if error.errno in (errno.EEXIST, errno.ENOTEMPTY):
                raise FileExistsError(f"{destination} already exists") from error
            raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def remove_folder_atomic(workspace: Workspace, folder: Path) -> None:
    """Delete a folder by first renaming it out of sight, so it vanishes in one step."""
    workspace.staging.mkdir(parents=True, exist_ok=True)
    trash = Path(tempfile.mkdtemp(prefix=f"deleted-{folder.name}-", dir=workspace.staging))
    os.rename(folder, trash / folder.name)
    shutil.rmtree(trash, ignore_errors=True)
