"""What the worker's jobs other than training runs (topic discovery, classifying a file) share: their states, their
checked folders, the exception that stops one between two steps, and a claim that only one process can take."""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path
from typing import Callable


class JobState(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    #: Its worker stopped answering (killed): nothing more happens to it.
    INTERRUPTED = "interrupted"

    @property
    def finished(self) -> bool:
        return self not in (JobState.QUEUED, JobState.RUNNING)


class JobStopped(Exception):
    """The job was cancelled, or its worker is stopping, between two steps."""


def claim(path: Path) -> bool:
    """Create ``path`` unless it exists: True for the one process that created it."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def checked_job_folder(parent: Path, job_id: str, prefix: str, refusal: Callable[[str], Exception]) -> Path:
    """A job's folder under ``parent``; an id that is not one of ours (another prefix, a character that is not a
    letter, digit or '-') is refused with ``refusal(job_id)``, since it names a path."""
    if not job_id.startswith(prefix) or not job_id.replace("-", "").isalnum():
        raise refusal(job_id)
    return parent / job_id
