"""The folders of a workspace and the atomic writes every module uses there."""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator


#: Who may read and write what the app keeps in its workspace (datasets, feedback texts, models, the
#: database with password hashes), as the umask each choice sets for the process: "owner" (files 0600,
#: folders 0700) or "group" (0640 / 0750, for an app and a worker running as two accounts of one group).
FILE_ACCESS_UMASKS = {"owner": 0o077, "group": 0o027}
DEFAULT_FILE_ACCESS = "owner"
_umask = FILE_ACCESS_UMASKS[DEFAULT_FILE_ACCESS]


def file_mode() -> int:
    """The mode of a file the app creates, under the policy in force (for files made with mkstemp, which
    ignores the umask)."""
    return 0o666 & ~_umask


def folder_mode() -> int:
    return 0o777 & ~_umask


def apply_file_access(access: str) -> None:
    """Set the process umask from the policy, so every file written from now on — by us, SQLite, the
    Trainer or a log handler — gets the policy's mode at creation, never a wider one first."""
    global _umask
    _umask = FILE_ACCESS_UMASKS[access]
    os.umask(_umask)


def tighten_tree(root: Path, access: str) -> int:
    """Take from every file and folder under ``root`` the permissions the policy forbids (a workspace from
    before the policy, or copied in); how many were changed. Links are left alone."""
    forbidden, changed = FILE_ACCESS_UMASKS[access], 0
    for path in [root, *root.rglob("*")]:
        try:
            info = path.lstat()
        except FileNotFoundError:  # removed while we walked
            continue
        if stat.S_ISLNK(info.st_mode):
            continue
        mode = stat.S_IMODE(info.st_mode)
        if mode & forbidden:
            os.chmod(path, mode & ~forbidden)
            changed += 1
    return changed


@dataclass(frozen=True)
class Workspace:
    """One workspace root and the fixed layout under it."""

    root: Path
    #: One of FILE_ACCESS_UMASKS (``storage.file_access`` in the configuration).
    access: str = DEFAULT_FILE_ACCESS

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
        """Apply the file-access policy and create the layout if missing; safe to call on every page run."""
        apply_file_access(self.access)
        for folder in (self.datasets, self.runs, self.models, self.logs, self.staging):
            folder.mkdir(parents=True, exist_ok=True)
        return self


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON so that readers see the old file or the new one, never a partial one."""
    write_text_atomic(path, json.dumps(data, ensure_ascii=False, indent=2, default=str))


def write_text_atomic(path: Path, text: str) -> None:
    """Write a text file so that readers see the old file or the new one, never a partial one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, file_mode())
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
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
    os.chmod(staging, folder_mode())
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
