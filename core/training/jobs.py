"""The training queue as the app sees it: put runs on it, watch them, ask to cancel them.

The app never trains: it writes a queued run record and puts the run's id on the queue
(:mod:`core.training.run_queue`); a worker process (:mod:`core.training.worker`, ``python -m core worker``)
takes it and trains it, on this machine or another one sharing the workspace folder and the
queue. Progress is read from the run's folder, which the worker writes. Cancelling writes a
request into that folder: a queued run is cancelled on the spot (under the run's lock, so a
worker starting it at that moment cannot also start it); a running one is stopped by its worker
at the next step. Workers announce themselves in ``workspace/workers/`` so pages can say
whether anyone is there to train.
"""

from __future__ import annotations

import os
import re
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from core.training.outcomes import record_run_outcome
from core.accounts.auth import Actor
from core.platform.config import AppConfig
from core.training import file_jobs
from core.training.file_jobs import FileJob
from core.training.run_queue import file_tasks, open_queue, queued_run_ids, topics_task
from core.training import topic_jobs
from core.training.topic_jobs import TopicJob
from core.training.runs import (
    IllegalTransition, RunHandle, RunRecord, RunRequest, RunState, create_run, list_runs, load_record, now_iso,
    as_seen, run_folder,
)
from core.platform.store import Store
from core.platform.workspace import Workspace, read_json, write_json_atomic

CANCEL_FILE = "cancel.json"
WORKERS_DIR = "workers"
#: How often :meth:`RunQueue.wait` looks at a run's folder.
WAIT_POLL_S = 0.1


def request_cancel(workspace: Workspace, run_id: str, actor: Actor) -> None:
    """Leave a request to cancel in the run's folder: whichever worker trains it reads it."""
    write_json_atomic(run_folder(workspace, run_id) / CANCEL_FILE, {"by": actor.username, "at": now_iso()})


def cancel_request(workspace: Workspace, run_id: str) -> dict[str, Any] | None:
    """Who asked to cancel the run, and when (None when nobody did)."""
    path = run_folder(workspace, run_id) / CANCEL_FILE
    try:
        return read_json(path)
    except (OSError, ValueError):
        return None


def _as_cancelling(workspace: Workspace, record: RunRecord) -> RunRecord:
    """A running run someone asked to cancel reads "cancelling…" until its worker stops it."""
    if record.state is RunState.RUNNING and not record.cancelled_by:
        request = cancel_request(workspace, record.run_id)
        if request:
            record.cancelled_by, record.message, record.eta_s = request.get("by"), "cancelling…", None
    return record


@dataclass(frozen=True)
class WorkerPresence:
    """One worker process as it last announced itself."""

    owner: str
    host: str
    pid: int
    started_at: str
    beat_at: str
    running: str | None

    def age_s(self, now: datetime | None = None) -> float:
        return ((now or datetime.now(timezone.utc)) - datetime.fromisoformat(self.beat_at)).total_seconds()


def workers_folder(workspace: Workspace) -> Path:
    return workspace.root / WORKERS_DIR


def presence_file(workspace: Workspace, owner: str) -> Path:
    return workers_folder(workspace) / (re.sub(r"[^A-Za-z0-9_.-]", "-", owner) + ".json")


def announce(workspace: Workspace, owner: str, started_at: str, running: str | None) -> None:
    """A worker's sign of life (written every heartbeat)."""
    folder = workers_folder(workspace)
    folder.mkdir(exist_ok=True)
    write_json_atomic(presence_file(workspace, owner), {
        "owner": owner, "host": socket.gethostname(), "pid": os.getpid(), "started_at": started_at,
        "beat_at": now_iso(), "running": running})


def workers_online(workspace: Workspace, lease_s: float) -> list[WorkerPresence]:
    """Workers that announced themselves within the lease (wherever they run), oldest first."""
    folder = workers_folder(workspace)
    found = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            presence = WorkerPresence(**read_json(path))
        except (OSError, ValueError, TypeError):
            continue
        if presence.age_s() <= lease_s:
            found.append(presence)
    return sorted(found, key=lambda p: p.started_at)


class RunQueue:
    """Queue runs for the workers and follow them; what the app, the API and the tests use (``store``: where a
    run cancelled before any worker took it is logged)."""

    def __init__(self, workspace: Workspace, config: AppConfig, store: Store | None = None) -> None:
        self.workspace, self.config, self.store = workspace, config, store
        self.huey, self._task = open_queue(config, workspace)
        self._topics_task = topics_task(self.huey)
        self._read_file_task, _ = file_tasks(self.huey)

    def submit(self, request: RunRequest, actor: Actor) -> RunRecord:
        """Write a queued run and put it on the queue; the first free worker trains it."""
        record = create_run(self.workspace, request, self.config, actor)
        self._task(record.run_id)
        return record

    def submit_topics(self, dataset_ref: str, granularity: str, actor: Actor) -> TopicJob:
        """Write a queued topic discovery of a version's texts and put it on the queue (core.training.topic_jobs)."""
        job = topic_jobs.create_job(self.workspace, dataset_ref, granularity, actor, self.config)
        self._topics_task(job.job_id)
        return job

    def submit_file(self, source: Path | bytes | IO[bytes], file_name: str, text_field: str, run: RunRecord,
                    precision: str, threshold: float, actor: Actor, sheet: str | None = None) -> FileJob:
        """Write a queued file job (the upload copied into it) and put its reading on the queue
        (core.training.file_jobs); the workers then score its pieces."""
        job = file_jobs.create_job(self.workspace, source, file_name, text_field, run.run_id, run.name,
                                   precision, threshold, actor, sheet)
        self._read_file_task(job.job_id)
        return job

    def topic_job(self, job_id: str) -> TopicJob:
        """A discovery as its worker last wrote it (a silent worker's: interrupted)."""
        return topic_jobs.as_seen(topic_jobs.load_job(self.workspace, job_id), self.config.worker.lease_s)

    def cancel(self, run_id: str, actor: Actor) -> bool:
        """Cancel a queued run now, or ask the worker to stop a running one at its next step (``actor``
        recorded as who cancelled it). False if it had already finished."""
        record = self.snapshot(run_id)
        if record.state.finished:
            return False
        request_cancel(self.workspace, run_id, actor)
        if record.state is RunState.QUEUED:
            handle = RunHandle(self.workspace, record)
            try:
                handle.cancel("cancelled before it started", cancelled_by=actor.username)
            except IllegalTransition:
                return True  # a worker started it at this moment: it reads the request at its first step
            if self.store is not None:  # a worker records how the runs it took ended; this one never reached one
                record_run_outcome(self.store, handle.snapshot())
        return True

    def snapshot(self, run_id: str) -> RunRecord:
        """The latest state of a run, as its worker last wrote it."""
        return _as_cancelling(self.workspace, as_seen(load_record(self.workspace, run_id)))

    def active(self, listed: list[RunRecord] | None = None) -> list[RunRecord]:
        """Runs queued or training, on any worker: the running ones first, then the queue in its order
        (``listed``: the runs a page already read with ``list_runs``, so a poll reads the folders once)."""
        listed = list_runs(self.workspace) if listed is None else listed
        records = [_as_cancelling(self.workspace, r) for r in listed if not r.state.finished]
        waiting = queued_run_ids(self.huey)
        place = {run_id: len(waiting) - position for position, run_id in enumerate(reversed(waiting))}
        return sorted(records, key=lambda r: (r.state is not RunState.RUNNING, place.get(r.run_id, len(waiting)),
                                              r.created_at))

    def wait(self, run_id: str, timeout: float | None = None) -> RunRecord:
        """Block until the run finishes or ``timeout`` passes (for the command line and tests)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        record = self.snapshot(run_id)
        while not record.state.finished and (deadline is None or time.monotonic() < deadline):
            time.sleep(WAIT_POLL_S)
            record = self.snapshot(run_id)
        return record

    def workers(self) -> list[WorkerPresence]:
        """The workers that are there to train (announced within the lease)."""
        return workers_online(self.workspace, self.config.worker.lease_s)

    def close(self) -> None:
        """Let go of the queue's database connection."""
        self.huey.storage.close()
