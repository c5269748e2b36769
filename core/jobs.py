"""The background job runner: one training at a time, the rest queue in order.

The worker thread never touches the UI. It changes a run only through its
:class:`~core.runs.RunHandle` (lock-protected, persisted to ``run.json``), so a
page refresh, a second tab or another user sees the same job. Cancel sets the
run's stop event; the model's ``fit`` (a ``TrainerCallback`` for the
transformer) stops at the next step. A runner started after a restart marks
runs whose process is gone as interrupted and removes what killed saves and runs left behind.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections import deque
from typing import Callable

from core.auth import Actor
from core.config import AppConfig
from core.housekeeping import clean_leftovers
from core.runs import (
    RunHandle, RunRecord, RunRequest, create_run, interrupt_record, list_runs, load_record, process_owner,
)
from core.training import execute_run
from core.workspace import Workspace

log = logging.getLogger(__name__)
_LIVE_RUNNERS: "weakref.WeakSet[JobRunner]" = weakref.WeakSet()


def _process_alive(owner: str) -> bool:
    """Whether the process named by a run's owner still runs (on this host)."""
    import os
    import socket

    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover_interrupted(workspace: Workspace) -> list[str]:
    """Mark queued or running runs whose job is gone as interrupted; returns their ids."""
    live = {run_id for runner in list(_LIVE_RUNNERS) for run_id in runner.known_run_ids()}
    recovered = []
    for record in list_runs(workspace):
        if record.state.finished or record.run_id in live:
            continue
        if record.owner and record.owner != process_owner() and _process_alive(record.owner):
            continue  # e.g. a command-line training still running in another process
        interrupt_record(workspace, record, "interrupted: the app stopped while this run was queued or training")
        recovered.append(record.run_id)
    return recovered


class JobRunner:
    """Queue and run training jobs in one background thread."""

    def __init__(self, workspace: Workspace, config: AppConfig,
                 on_finish: Callable[[RunRecord], None] | None = None) -> None:
        self.workspace, self.config, self.on_finish = workspace, config, on_finish
        self._queue: deque[str] = deque()
        self._handles: dict[str, RunHandle] = {}
        self._stops: dict[str, threading.Event] = {}
        self._done: dict[str, threading.Event] = {}
        self._condition = threading.Condition()
        self._worker: threading.Thread | None = None
        self._closed = False
        self.recovered = recover_interrupted(workspace)
        self.cleaned = clean_leftovers(workspace)  # what killed saves and runs left behind
        _LIVE_RUNNERS.add(self)

    def known_run_ids(self) -> set[str]:
        with self._condition:
            return set(self._handles)

    def submit(self, request: RunRequest, actor: Actor) -> RunRecord:
        """Queue a run; it starts as soon as the runs before it are done."""
        record = create_run(self.workspace, request, self.config, actor)
        with self._condition:
            if self._closed:
                raise RuntimeError("this job runner is closed")
            self._forget_finished()
            self._handles[record.run_id] = RunHandle(self.workspace, record)
            self._stops[record.run_id] = threading.Event()
            self._done[record.run_id] = threading.Event()
            self._queue.append(record.run_id)
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._work, name="feedback-studio-jobs", daemon=True)
                self._worker.start()
            self._condition.notify()
        return record

    def cancel(self, run_id: str, actor: Actor) -> bool:
        """Stop a running job at its next step, or drop a queued one (``actor`` recorded as who cancelled it).
        False if already finished."""
        with self._condition:
            handle = self._handles.get(run_id)
            if handle is None or handle.snapshot().state.finished:
                return False
            self._stops[run_id].set()
            handle.report(cancelled_by=actor.username, message="cancelling…", eta_s=None, persist=True)
            queued = run_id in self._queue
            if queued:
                self._queue.remove(run_id)
                handle.cancel("cancelled before it started")
                self._done[run_id].set()
        if queued and self.on_finish is not None:
            self.on_finish(handle.snapshot())  # a running job reports its end from the worker
        return True

    def snapshot(self, run_id: str) -> RunRecord:
        """The latest state of a run, from memory if this runner has it, else from disk."""
        with self._condition:
            handle = self._handles.get(run_id)
        return handle.snapshot() if handle else load_record(self.workspace, run_id)

    def active(self) -> list[RunRecord]:
        """Runs queued or running in this runner, in queue order (running first)."""
        with self._condition:
            handles = list(self._handles.values())
        records = [h.snapshot() for h in handles]
        return [r for r in records if not r.state.finished]

    def wait(self, run_id: str, timeout: float | None = None) -> RunRecord:
        """Block until the run finishes (for the command line and tests)."""
        with self._condition:
            done = self._done.get(run_id)
        if done is not None:
            done.wait(timeout)
        return self.snapshot(run_id)

    def _forget_finished(self) -> None:
        """Drop the in-memory state of runs that have ended (their ``run.json`` keeps everything).

        Called with the lock held, when a new run is submitted, so a long-lived server's
        runner holds only the runs of the current batch instead of every run it ever made.
        """
        for run_id in [r for r, done in self._done.items() if done.is_set()]:
            del self._handles[run_id], self._stops[run_id], self._done[run_id]

    def close(self) -> None:
        """Stop taking jobs: the running job is told to stop, the worker ends, the runner forgets its runs."""
        with self._condition:
            self._closed = True
            for stop in self._stops.values():
                stop.set()
            self._queue.clear()
            self._condition.notify_all()
        if self._worker is not None:
            self._worker.join(timeout=60)
        _LIVE_RUNNERS.discard(self)

    def _next(self) -> str | None:
        with self._condition:
            while not self._queue and not self._closed:
                self._condition.wait()
            return None if self._closed else self._queue.popleft()

    def _work(self) -> None:
        while True:
            run_id = self._next()
            if run_id is None:
                return
            handle, stop = self._handles[run_id], self._stops[run_id]
            try:
                final = execute_run(self.workspace, handle, self.config, stop)
                if self.on_finish is not None:
                    self.on_finish(final)
            except Exception:  # execute_run records failures; this guards the worker itself
                log.exception("job runner failed on %s", run_id)
            finally:
                self._done[run_id].set()
