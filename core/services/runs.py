"""Training runs: starting them on the queue, cancelling, deleting a finished one."""

from __future__ import annotations

import threading
from typing import Callable

from core.audit import EventType, record_run_outcome
from core.auth import Permission
from core.housekeeping import delete_run as delete_run_files
from core.runs import RunHandle, RunRecord, RunRequest, create_run, load_record
from core.training import execute_run
from core.services.studio import Caller, Studio


def start_runs(studio: Studio, caller: Caller, requests: list[RunRequest]) -> list[RunRecord]:
    """Queue one run per request (they train one after another); each start is logged."""
    actor = caller.require(Permission.TRAIN)
    started = []
    for request in requests:
        record = studio.jobs.submit(request, actor)
        studio.audit(caller, EventType.TRAINING_STARTED, run=record.run_id, model=record.kind,
                     dataset=record.dataset_ref, preset=record.preset)
        started.append(record)
    return started


def cancel_run(studio: Studio, caller: Caller, run_id: str) -> bool:
    """Stop a run at its next step (or drop it from the queue); False when it had already finished.
    How it ended is logged when it stops, with who cancelled it."""
    return studio.jobs.cancel(run_id, caller.require(Permission.TRAIN))


def delete_run(studio: Studio, caller: Caller, run_id: str) -> None:
    """Delete a finished run and its files (never the published model or a run still training)."""
    caller.require(Permission.TRAIN)
    record = load_record(studio.workspace, run_id)
    delete_run_files(studio.workspace, run_id)
    studio.audit(caller, EventType.RUN_DELETED, run=run_id, model=record.kind, dataset=record.dataset_ref)


def train_here(studio: Studio, caller: Caller, request: RunRequest,
               on_change: Callable[[RunRecord], None] | None = None) -> RunRecord:
    """Train one run in this process and wait for it (the command line): logged like a queued run — its start
    now, how it ended when it ends."""
    actor = caller.require(Permission.TRAIN)
    handle = RunHandle(studio.workspace, create_run(studio.workspace, request, studio.config, actor),
                       on_change=on_change)
    record = handle.snapshot()
    studio.audit(caller, EventType.TRAINING_STARTED, run=record.run_id, model=record.kind,
                 dataset=record.dataset_ref, preset=record.preset)
    finished = execute_run(studio.workspace, handle, studio.config, threading.Event())
    record_run_outcome(studio.store, finished)
    return finished
