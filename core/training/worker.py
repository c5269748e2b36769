"""The training worker: ``python -m core worker`` takes queued runs off the queue and trains them.

One worker trains one run at a time; start more (on this machine or others sharing the workspace
folder and the PostgreSQL database) to train more at once. Huey's consumer takes the runs
(:mod:`core.training.run_queue`); beside it the worker keeps watch, every ``worker.poll_s`` seconds:

- a cancel request left in a run's folder by any app server stops that run at its next step;
- the worker's presence file is renewed (pages say whether a worker is there to train);
- runs whose heartbeat is older than the lease (their worker was killed, wherever it ran) are
  recorded as interrupted and queued again as a new run while ``worker.retries`` last; queued runs
  the queue lost (a worker killed between taking one and starting it) are put back on it.

Stopping the worker (SIGTERM or Ctrl-C, as ``make run`` does) interrupts the run in progress at its
next step and queues it again for the next worker: nothing queued is lost.
"""

from __future__ import annotations

import functools
import logging
import os
import secrets
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable
from datetime import datetime, timedelta, timezone

from huey.consumer import Consumer

from core.training.outcomes import record_run_outcome
from core.platform.distributed import launch_command, resolved_processes
from core.models.model_kinds import model_kinds
from core.platform.config import WORKSPACE_ENV_VAR, AppConfig
from core.training.housekeeping import Cleaned, clean_leftovers
from core.platform.hardware import configure_cpu_threads, usable_cores
from core.training.jobs import announce, cancel_request, presence_file, workers_online
from core.training import file_jobs
from core.training.finished import load_run_model
from core.models.predict import Predictor
from core.training.run_queue import file_tasks, open_queue, queued_file_tasks, queued_run_ids, topics_task
from core.training.topic_jobs import JobStopped, execute_job
from core.training.speed import answer_questions
from core.training.runs import (
    IllegalTransition, RunError, RunHandle, RunRecord, RunState, load_record, settle_dead_runs, now_iso, retry_run,
)
from core.platform.store import Store, default_database_url
from core.training.execution import execute_run
from core.platform.workspace import Workspace

log = logging.getLogger(__name__)

#: Why a run stopped when its worker was stopped (it is queued again).
WORKER_STOPPED = "interrupted: its worker was stopped; queued again"


class _Consumer(Consumer):
    """Huey's consumer without its signal handlers: the worker owns the process's signals (and tests run
    workers in threads, where Python allows none)."""

    def _set_signal_handlers(self) -> None:
        pass


class StopFlag(threading.Event):
    """A run's stop signal, and whether it means interrupt (the worker stops) rather than cancel, and who
    cancelled."""

    interrupted_because: str | None = None
    cancelled_by: str | None = None


@dataclass
class Swept:
    """What one look over the workspace did."""

    retried: dict[str, str] = field(default_factory=dict)  # old run id -> new run id
    requeued: list[str] = field(default_factory=list)


def worker_name() -> str:
    """Host, process and a random tag: two workers never share a name, even in one process."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(2)}"


class Worker:
    """Train queued runs in this process until stopped."""

    def __init__(self, config: AppConfig, workspace: Workspace | None = None, store: Store | None = None,
                 config_path: str | None = None,
                 on_scored: Callable[[Store, file_jobs.FileJob, list, list], None] | None = None) -> None:
        """``on_scored(store, job, texts, predictions)``: what becomes of each file job piece's predictions
        (core.services.runs.worker logs them and queues some for review)."""
        self.config, self.config_path = config, config_path
        self.on_scored = on_scored
        self.workspace = workspace or config.workspace()
        self.store = store or Store(config.storage.database_url or default_database_url(self.workspace.root))
        self.owner, self.started_at = worker_name(), now_iso()
        self.huey, self.queue_run = open_queue(config, self.workspace, train=self.train)
        self.queue_topics = topics_task(self.huey, self.discover)
        self.queue_file_read, self.queue_file_piece = file_tasks(self.huey, self.read_file, self.classify_piece)
        #: The model the last file job's pieces were scored with: (run, variant, threshold) and its predictor.
        self._file_predictor: tuple[tuple[str, str, float, int], Predictor] | None = None
        #: The topic discoveries running here, each with its stop signal.
        self._discovering: dict[str, threading.Event] = {}
        #: The runs training now, with the handle that writes each (None: a torchrun process group writes it).
        self._running: dict[str, tuple[RunHandle | None, StopFlag]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._watch: threading.Thread | None = None
        self._measure: threading.Thread | None = None
        self._consumer: _Consumer | None = None
        #: How many runs this worker trained to an end, by final state (for the command line and the benchmark).
        self.finished: dict[str, int] = {}
        #: What the start's clean-up removed.
        self.cleaned: Cleaned | None = None

    def start(self) -> "Worker":
        """Tidy what killed runs left behind, then take runs off the queue (threads; returns at once)."""
        self.cleaned = clean_leftovers(self.workspace)
        announce(self.workspace, self.owner, self.started_at, None)
        self._consumer = _Consumer(self.huey, workers=1, worker_type="thread", periodic=False, initial_delay=0.1,
                                   backoff=1.5, max_delay=self.config.worker.poll_s, check_worker_health=False)
        self._consumer.start()
        self._watch = threading.Thread(target=self._keep_watch, name="worker-watch", daemon=True)
        self._watch.start()
        self._measure = threading.Thread(target=self._answer_speed_questions, name="worker-speed", daemon=True)
        self._measure.start()
        log.info("worker %s takes runs from the queue", self.owner)
        return self

    def serve(self) -> None:
        """Run until SIGTERM or SIGINT (the command line); then stop as :meth:`stop` says. The process first
        lowers its CPU priority (``worker.nice``; its threads and torchrun's processes inherit it)."""
        if self.config.worker.nice:
            os.nice(self.config.worker.nice)
        asked = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: asked.set())
        self.start()
        asked.wait()
        log.info("worker %s stopping", self.owner)
        self.stop()

    def stop(self, timeout_s: float = 120.0) -> None:
        """Take no more runs; a run in progress is interrupted at its next step and queued again."""
        if self._stopping.is_set():
            return
        with self._lock:  # a run being claimed now is either in the loop below or sees the flag when it registers
            self._stopping.set()
            for _, stop in self._running.values():
                stop.interrupted_because = WORKER_STOPPED
                stop.set()
            for stop in self._discovering.values():
                stop.set()
        if self._consumer is not None:
            self._consumer.shutdown_timeout = timeout_s
            self._consumer.stop(graceful=True)
        for thread in (self._watch, self._measure):
            if thread is not None:
                thread.join(timeout_s)
        presence_file(self.workspace, self.owner).unlink(missing_ok=True)
        self.huey.storage.close()

    def running(self) -> list[str]:
        """Ids of the runs this worker is training now."""
        with self._lock:
            return list(self._running)

    def busy(self) -> bool:
        """Whether a run trains or topics are being found here (speed questions wait until neither)."""
        with self._lock:
            return bool(self._running or self._discovering)

    # -- finding topics ---------------------------------------------------------------------------------------

    def _stoppable(self, job_id: str, requeue: Callable[[str], None], work: Callable[[threading.Event], Any]) -> Any:
        """``work(stop)`` for a job other than a run; the worker stopping, before or during it, puts the job back
        on the queue (None back)."""
        if self._stopping.is_set():
            requeue(job_id)
            return None
        stop = threading.Event()
        with self._lock:
            self._discovering[job_id] = stop
            if self._stopping.is_set():
                stop.set()
        try:
            return work(stop)
        except JobStopped:
            requeue(job_id)
            return None
        finally:
            with self._lock:
                del self._discovering[job_id]

    def discover(self, job_id: str) -> None:
        """Huey hands over a queued topic discovery: run it (core.training.topic_jobs); stopping the worker puts
        it back on the queue."""
        final = self._stoppable(job_id, self.queue_topics,
                                lambda stop: execute_job(self.workspace, job_id, self.config, self.owner, stop))
        if final is not None:
            log.info("worker %s: topic discovery %s %s", self.owner, job_id, final.state.value)

    # -- classifying files ------------------------------------------------------------------------------------

    def read_file(self, job_id: str) -> None:
        """Huey hands over a file job to read: read it into pieces and queue one task per piece."""
        job = self._stoppable(job_id, self.queue_file_read,
                              lambda stop: file_jobs.prepare_job(self.workspace, job_id, self.config, stop))
        if job is None:
            return
        if job.prepared_at is not None and job.state is file_jobs.JobState.RUNNING:
            done = set(file_jobs.parts_done(self.workspace, job))
            for piece in range(job.pieces):
                if piece not in done:
                    self.queue_file_piece(job_id, piece)
        log.info("worker %s: file job %s read (%s, %d rows in %d pieces)", self.owner, job_id, job.state.value,
                 job.rows, job.pieces)

    def classify_piece(self, job_id: str, piece: int) -> None:
        """Huey hands over a piece of a file job: score it (a piece already scored is left as it is)."""
        if self._stopping.is_set():
            self.queue_file_piece(job_id, piece)
            return
        try:
            scored = None if self.on_scored is None else functools.partial(self.on_scored, self.store)
            job = file_jobs.classify_piece(self.workspace, job_id, piece, self._predictor_for, self.owner, scored)
        except (RunError, OSError, ValueError) as why:
            log.exception("worker %s: file job %s piece %d failed", self.owner, job_id, piece)
            job = file_jobs.fail_job(self.workspace, job_id, f"{type(why).__name__}: {why}")
        if job.state.finished:
            log.info("worker %s: file job %s %s", self.owner, job_id, job.state.value)

    def _scoring_threads(self) -> int:
        """This machine's cores shared among the workers on it: two workers each running the model on every core
        fight over them (measured: a transformer's file took twice as long with two workers on 2 cores)."""
        here = [w for w in workers_online(self.workspace, self.config.worker.lease_s) if w.host == socket.gethostname()]
        return configure_cpu_threads(self.config.training.cpu_threads
                                     or max(1, usable_cores() // max(1, len(here))))

    def _predictor_for(self, job: file_jobs.FileJob) -> Predictor:
        """The job's model at its variant and threshold, loaded once while pieces of one job follow each other
        (again when the workers on this machine, and so its share of the cores, change)."""
        key = (job.run_id, job.precision, job.threshold, self._scoring_threads())
        if self._file_predictor is None or self._file_predictor[0] != key:
            self._file_predictor = None  # the previous model goes before the next loads
            model, _ = load_run_model(self.workspace, job.run_id, self.config)
            model.use_precision(job.precision)
            self._file_predictor = (key, Predictor.for_model(model, job.threshold, self.config.classify.chunk_size))
        return self._file_predictor[1]

    def sweep_files(self) -> list[tuple[str, int | None]]:
        """Queue again the file jobs' reading and pieces nobody will do (their worker was killed); remove the
        finished jobs kept long enough."""
        lost = file_jobs.orphans(self.workspace, queued_file_tasks(self.huey), self.config.worker.lease_s)
        for job_id, piece in lost:
            self.queue_file_read(job_id) if piece is None else self.queue_file_piece(job_id, piece)
        removed = file_jobs.remove_expired(self.workspace, self.config.classify.job_keep_hours)
        if lost or removed:
            log.info("worker %s: file jobs queued again %s, removed %s", self.owner, lost, removed)
        return lost

    # -- training one run -------------------------------------------------------------------------------------

    def train(self, run_id: str) -> None:
        """Huey hands over a queued run's id: train it, unless it was cancelled or another worker has it."""
        if self._stopping.is_set():
            self.queue_run(run_id)  # taken while stopping: back on the queue for the next worker
            return
        handle = self._claim(run_id)
        if handle is None:
            return
        stop = StopFlag()
        processes = self._processes(handle.snapshot())
        with self._lock:
            self._running[run_id] = (handle if processes == 1 else None, stop)
            if self._stopping.is_set():  # claimed just as the worker began to stop
                stop.interrupted_because = WORKER_STOPPED
                stop.set()
        try:
            if processes > 1:
                final = self._execute_distributed(handle.run_id, stop, processes)
            else:
                final = execute_run(self.workspace, handle, self.config, stop)
        finally:
            with self._lock:
                del self._running[run_id]
        self.finished[final.state.value] = self.finished.get(final.state.value, 0) + 1
        record_run_outcome(self.store, final)
        if final.state is RunState.INTERRUPTED and stop.interrupted_because:
            self._queue_again(final, counts=False)

    def _claim(self, run_id: str) -> RunHandle | None:
        """Move the run from queued to running under its lock: a run cancelled meanwhile, or started by
        another worker that took a second copy of it off the queue, is left alone."""
        try:
            handle = RunHandle(self.workspace, load_record(self.workspace, run_id))
            handle.start(self.owner, lease_s=self.config.worker.lease_s)
        except (RunError, OSError, ValueError) as why:  # IllegalTransition is a RunError
            log.info("worker %s leaves run %s: %s", self.owner, run_id, why)
            return None
        return handle

    def _processes(self, record: RunRecord) -> int:
        """How many processes train this run: the configured number for a kind that trains data-parallel."""
        if not model_kinds()[record.kind].data_parallel:
            return 1
        return resolved_processes(self.config)

    def _execute_distributed(self, run_id: str, stop: StopFlag, processes: int) -> RunRecord:
        """Hand the running run to torchrun's processes (their main process writes the record from here on);
        a cancel or a stop ends the process group, and the run is recorded as cancelled or interrupted."""
        command = launch_command(run_id, processes, self.config_path)  # None: they inherit the environment's
        process = subprocess.Popen(command, start_new_session=True,
                                   env={**os.environ, WORKSPACE_ENV_VAR: str(self.workspace.root)})
        while process.poll() is None:
            if stop.wait(self.config.worker.poll_s):
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
        record = load_record(self.workspace, run_id)
        if record.state.finished:
            return record
        ended = RunHandle(self.workspace, record)
        if stop.interrupted_because:
            ended.interrupt(stop.interrupted_because)
        elif stop.is_set():
            ended.cancel(cancelled_by=stop.cancelled_by)
        else:
            ended.fail(f"the training processes exited with code {process.returncode} without saying why")
        return ended.snapshot()

    # -- keeping watch ----------------------------------------------------------------------------------------

    def _keep_watch(self) -> None:
        """Cancel requests every poll; presence and the sweep every heartbeat."""
        every = self.config.worker.heartbeat_s
        last = 0.0
        while not self._stopping.wait(self.config.worker.poll_s):
            self._pass_on_cancels()
            if time.monotonic() - last >= every:
                last = time.monotonic()
                try:
                    running = self.running()
                    announce(self.workspace, self.owner, self.started_at, running[0] if running else None)
                    self.sweep()
                    self.sweep_files()
                except Exception:  # a watch that dies would leave cancels unheard: log and go on
                    log.exception("worker %s: the watch failed; trying again", self.owner)

    def _answer_speed_questions(self) -> None:
        """While no run trains here, measure the training speeds the Train page asks about (its estimate), so the
        web server never loads the model to time it."""
        while not self._stopping.wait(self.config.worker.poll_s):
            if self.busy():
                continue
            try:
                answer_questions(self.workspace, self.config)
            except Exception:  # a thread that dies would leave the page waiting: log and go on
                log.exception("worker %s: measuring training speeds failed; trying again", self.owner)

    def _pass_on_cancels(self) -> None:
        """Stop the runs someone asked to cancel (from any server), saying who asked."""
        with self._lock:
            running = list(self._running.items())
        for run_id, (handle, stop) in running:
            request = None if stop.is_set() else cancel_request(self.workspace, run_id)
            if request:
                stop.cancelled_by = request.get("by")
                if handle is not None:  # a torchrun group's record is its main process's to write
                    handle.report(cancelled_by=stop.cancelled_by, message="cancelling…", eta_s=None, persist=True)
                stop.set()

    def sweep(self) -> Swept:
        """Interrupt runs whose worker died and queue them again while retries last; put back queued runs the
        queue lost. Safe on every worker at once: each change is a checked transition under the run's lock."""
        swept = Swept()
        waiting = set(queued_run_ids(self.huey))
        now = datetime.now(timezone.utc)
        grace = timedelta(seconds=2 * self.config.worker.heartbeat_s)
        for record in settle_dead_runs(self.workspace):  # records the runs whose lease ran out as interrupted
            if record.state is RunState.INTERRUPTED and record.retryable and not record.retried_as:
                if record.retries_used < self.config.worker.retries:
                    new = self._queue_again(record, counts=True)
                    if new is not None:
                        swept.retried[record.run_id] = new.run_id
            elif (record.state is RunState.QUEUED and record.run_id not in waiting
                  and now - datetime.fromisoformat(record.created_at) > grace):
                self.queue_run(record.run_id)
                swept.requeued.append(record.run_id)
        if swept.retried or swept.requeued:
            log.info("worker %s: retried %s, queued again %s", self.owner, swept.retried, swept.requeued)
        return swept

    def _queue_again(self, record: RunRecord, counts: bool) -> RunRecord | None:
        """A new queued run with the interrupted one's spec (``counts``: a retry after a lost worker)."""
        try:
            new = retry_run(self.workspace, record, counts)
        except IllegalTransition:
            return None  # another worker retried it first
        self.queue_run(new.run_id)
        return new
