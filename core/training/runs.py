"""Run records: one folder per training run under ``workspace/runs/<run_id>/``.

``run.json`` holds the record's spec (what to train, on which data version, with
which recipe — fixed at creation), its state and its result (metrics, durations,
the model's card); ``progress.json`` the live progress written up to once a
second while it trains (step, loss, ETA, the training curve, the heartbeat).
Both are replaced atomically; readers see the two merged. The trained model goes
to ``model/``, which is renamed into place before the record says
``succeeded``: a half-written run never looks finished.
"""

from __future__ import annotations

import copy
import fcntl
import json
import os
import secrets
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Iterator

from core.accounts.auth import Actor
from core.platform.config import AppConfig
from core.training.recipe import Recipe
from core.platform.workspace import Workspace, read_json, write_json_atomic, write_text_atomic

RECORD_FILE = "run.json"
PROGRESS_FILE = "progress.json"
#: The metric history, one JSON line appended per report (never rewritten: a long run's writes stay small).
HISTORY_FILE = "history.jsonl"
#: What a training run reports often: the latest values kept in PROGRESS_FILE, apart from the spec and the result.
PROGRESS_FIELDS = ("step", "total_steps", "unit", "epoch", "loss", "elapsed_s", "eta_s", "message",
                   "heartbeat_at")
MODEL_DIR = "model"
#: Progress is written to disk at most this often (state changes are written at once).
PERSIST_INTERVAL_S = 1.0
#: A training run writes a heartbeat this often, even in a phase that reports no progress ...
HEARTBEAT_S = 10.0
#: ... and one silent for longer than this is taken for dead (its process killed) wherever runs are listed.
STALE_AFTER_S = 120.0


class RunState(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"

    @property
    def finished(self) -> bool:
        return self not in (RunState.QUEUED, RunState.RUNNING)


class RunError(ValueError):
    """A run that cannot be found, loaded or started, and why."""


class IllegalTransition(RunError):
    """A state change the run's life does not allow (a finished run never runs again)."""


#: Which states may follow which. A finished run (succeeded, failed, cancelled, interrupted) never changes.
TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    RunState.QUEUED: frozenset({RunState.RUNNING, RunState.CANCELLED, RunState.INTERRUPTED, RunState.FAILED}),
    RunState.RUNNING: frozenset({RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED, RunState.INTERRUPTED}),
}


def check_transition(record: "RunRecord", new: RunState) -> None:
    """Raise IllegalTransition unless ``record`` may go from its state to ``new``."""
    if new not in TRANSITIONS.get(record.state, frozenset()):
        raise IllegalTransition(f"run {record.run_id} is {record.state.value}; it cannot become {new.value}")


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class RunRequest:
    """What an analyst asks for: one model kind on one dataset version."""

    dataset_ref: str
    kind: str
    preset: str
    #: The kind's own typed hyper-parameters (``model_kinds()[kind].Settings``); another type (a preset's
    #: transformer settings for a baseline, say) stands for the kind's defaults.
    hyperparameters: Any
    #: Train on at most this many training examples (a stratified sample); None uses all.
    max_train_examples: int | None = None
    #: The transformer's plan (core.training.recipe) the hyper-parameters came from; values that differ were set by hand.
    recipe: Recipe | None = None


@dataclass
class RunRecord:
    run_id: str
    kind: str
    title: str
    dataset_ref: str
    dataset_fingerprint: str
    split_fingerprint: str
    labels: list[str]
    preset: str
    hyperparameters: dict[str, Any]
    settings: dict[str, Any]
    created_at: str
    created_by: str | None = None
    max_train_examples: int | None = None
    #: How the hyper-parameters were chosen (core.training.recipe.Recipe.to_dict): values, reasons, estimate.
    recipe: dict[str, Any] | None = None
    state: RunState = RunState.QUEUED
    owner: str = ""
    started_at: str | None = None
    finished_at: str | None = None
    step: int = 0
    total_steps: int = 0
    #: What ``step`` counts in the phase under way: "step", "text" (core.models.classifiers.Progress) or "fold".
    unit: str = "step"
    epoch: float | None = None
    loss: float | None = None
    elapsed_s: float = 0.0
    eta_s: float | None = None
    message: str = ""
    history: list[dict[str, Any]] = field(default_factory=list)
    train_examples: int = 0
    validation_metrics: dict[str, float] | None = None
    #: A kind that trains in seconds: its k-fold cross-validation on the train and validation splits (metrics, folds,
    #: texts; core.evaluation.cross_validation), the score it is compared by.
    cv_metrics: dict[str, float] | None = None
    test_metrics: dict[str, float] | None = None
    test_per_class: list[dict[str, Any]] | None = None
    fit_info: dict[str, Any] = field(default_factory=dict)
    durations: dict[str, float] = field(default_factory=dict)
    model: dict[str, Any] | None = None
    #: Reduced-precision check of the saved model (transformers): accuracy, speed, the variant served.
    inference: dict[str, Any] | None = None
    cancelled_by: str | None = None
    error: str | None = None
    #: Written every ``worker.heartbeat_s`` seconds while the run trains (whichever process trains it) ...
    heartbeat_at: str | None = None
    #: ... and the run is taken for dead when its heartbeat is older than this (the lease its worker took).
    lease_s: float | None = None
    #: Interrupted because its process died (not by a person): a worker may queue it again.
    retryable: bool = False
    #: The interrupted run this one trains again, and how many times its line was retried after a lost worker.
    retry_of: str | None = None
    retries_used: int = 0
    #: The run that trains this interrupted one again.
    retried_as: str | None = None

    @property
    def name(self) -> str:
        """How people read a run: "Fine-tuned transformer, 25 Nov 14:02, feedback/v1" (UTC); the id is for details."""
        created = datetime.fromisoformat(self.created_at)
        return f"{self.title}, {created:%d %b %H:%M}, {self.dataset_ref}"

    @property
    def elapsed_now(self) -> float:
        """Seconds since a running run started (ticking even in a phase that reports no steps), else as recorded."""
        if self.state is RunState.RUNNING and self.started_at:
            return max(self.elapsed_s, (datetime.now(timezone.utc) - datetime.fromisoformat(self.started_at)).total_seconds())
        return self.elapsed_s

    @property
    def fraction_done(self) -> float:
        if self.state is RunState.SUCCEEDED:
            return 1.0
        return min(1.0, self.step / self.total_steps) if self.total_steps else 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["state"] = self.state.value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunRecord":
        known = {f.name for f in fields(cls)}
        return cls(**{**{k: v for k, v in data.items() if k in known}, "state": RunState(data["state"])})


_RECORD_FIELDS = frozenset(f.name for f in fields(RunRecord))


def process_owner() -> str:
    """Identifies the process running a job, so a restart can tell dead jobs from live ones."""
    return f"{socket.gethostname()}:{os.getpid()}"


def new_run_id(kind: str) -> str:
    return f"{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{kind}-{secrets.token_hex(3)}"


def run_folder(workspace: Workspace, run_id: str) -> Path:
    if not run_id or "/" in run_id or run_id.startswith("."):
        raise RunError(f"not a run id: {run_id!r}")
    return workspace.runs / run_id


LOCK_FILE = ".lock"


@dataclass
class _HeldLock:
    """One run lock in this process: the thread lock, how deep the holder is in, the open lock file, and how
    many threads hold or wait for it (the entry goes when none does)."""

    lock: threading.RLock = field(default_factory=threading.RLock)
    depth: int = 0
    handle: int | None = None
    users: int = 0


_LOCKS_HELD: dict[Path, _HeldLock] = {}
_LOCKS_GUARD = threading.Lock()


@contextmanager
def run_lock(workspace: Workspace, run_id: str) -> Iterator[None]:
    """Hold the run's lock across processes (and machines sharing the folder): a state change is read, checked
    and written by one holder at a time. Re-entrant within a process; a lock nobody holds is forgotten."""
    path = run_folder(workspace, run_id) / LOCK_FILE
    with _LOCKS_GUARD:
        held = _LOCKS_HELD.setdefault(path, _HeldLock())
        held.users += 1
    try:
        with held.lock:
            if held.depth == 0:
                held.handle = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
                fcntl.flock(held.handle, fcntl.LOCK_EX)
            held.depth += 1
            try:
                yield
            finally:
                held.depth -= 1
                if held.depth == 0:
                    os.close(held.handle)  # closing releases the flock
                    held.handle = None
    finally:
        with _LOCKS_GUARD:
            held.users -= 1
            if held.users == 0:
                del _LOCKS_HELD[path]


def stored_state(workspace: Workspace, run_id: str) -> RunState:
    """The state on disk, which another process may have changed since this one read the record."""
    return RunState(read_json(run_folder(workspace, run_id) / RECORD_FILE)["state"])


def save_progress(workspace: Workspace, record: RunRecord) -> None:
    """Write only the progress (the frequent write while a run trains)."""
    data = record.to_dict()
    write_json_atomic(run_folder(workspace, record.run_id) / PROGRESS_FILE, {k: data[k] for k in PROGRESS_FIELDS})


def save_record(workspace: Workspace, record: RunRecord) -> None:
    """Write the whole record but its history (appended as it grows): progress first, then spec, state and
    result (a reader between the two sees newer progress beside the older state, never the reverse)."""
    data = record.to_dict()
    history = data.pop("history")
    folder = run_folder(workspace, record.run_id)
    if history and not (folder / HISTORY_FILE).exists():  # a run saved before the file: its history moves there
        write_text_atomic(folder / HISTORY_FILE, "".join(json.dumps(point, default=str) + "\n" for point in history))
    write_json_atomic(folder / PROGRESS_FILE, {k: data.pop(k) for k in PROGRESS_FIELDS})
    write_json_atomic(folder / RECORD_FILE, data)


def append_history(workspace: Workspace, run_id: str, point: dict[str, Any]) -> None:
    """One more point of the run's metric history, as one line at the end of its history file."""
    with (run_folder(workspace, run_id) / HISTORY_FILE).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(point, default=str) + "\n")


def read_history(folder: Path) -> list[dict[str, Any]] | None:
    """The run's history from its history file (a line being written as it is read is left for the next read);
    None when it has none (runs saved before the file kept it in their progress)."""
    path = folder / HISTORY_FILE
    if not path.exists():
        return None
    points = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            points.append(json.loads(line))
        except json.JSONDecodeError:
            break  # the last line, half written
    return points


def _read_record(folder: Path) -> RunRecord:
    """The record of a run folder: run.json with progress.json laid over it (runs saved before the split keep
    their progress in run.json), and the history file's points."""
    data = read_json(folder / RECORD_FILE)
    progress = folder / PROGRESS_FILE
    if progress.exists():
        data.update(read_json(progress))
    history = read_history(folder)
    if history is not None:
        data["history"] = history
    return RunRecord.from_dict(data)


def load_record(workspace: Workspace, run_id: str) -> RunRecord:
    folder = run_folder(workspace, run_id)
    if not (folder / RECORD_FILE).exists():
        raise RunError(f"no run called {run_id!r}")
    return _read_record(folder)


def run_name(workspace: Workspace, run_id: str | None) -> str:
    """A run's readable name by id; the id itself (said to be gone) when its folder was deleted."""
    if not run_id:
        return "—"
    try:
        return load_record(workspace, run_id).name
    except (RunError, OSError, ValueError):
        return f"{run_id} (deleted)"


def run_namer(records: list[RunRecord]) -> Callable[[str | None], str]:
    """Names for many ids at once (a log of thousands of events) from runs already read (``list_runs``),
    instead of one ``run.json`` read per mention."""
    names = {record.run_id: record.name for record in records}
    return lambda run_id: "—" if not run_id else names.get(run_id, f"{run_id} (deleted)")


def resolve_run(workspace: Workspace, run: str | Path) -> tuple[Workspace, str]:
    """A run named by id (in ``workspace``) or by its folder (anywhere): its workspace and id."""
    path = Path(run)
    if path.is_dir() and (path / RECORD_FILE).exists():
        return Workspace(path.resolve().parent.parent), path.name
    return workspace, str(run)


def heartbeat_age(record: RunRecord, now: datetime | None = None) -> float | None:
    """Seconds since a running run last showed life (its heartbeat, else its start); None when not running."""
    beat = record.heartbeat_at or record.started_at
    if record.state is not RunState.RUNNING or not beat:
        return None
    return ((now or datetime.now(timezone.utc)) - datetime.fromisoformat(beat)).total_seconds()


def interrupt_record(workspace: Workspace, record: RunRecord, why: str, retryable: bool = False) -> RunRecord:
    """Record a queued or running run whose process is gone as interrupted (the transition checked against the
    state on disk, under the run's lock)."""
    with run_lock(workspace, record.run_id):
        record = load_record(workspace, record.run_id)
        check_transition(record, RunState.INTERRUPTED)
        record.state, record.finished_at, record.eta_s, record.message = RunState.INTERRUPTED, now_iso(), None, why
        record.retryable = retryable
        save_record(workspace, record)
    return record


def silence(record: RunRecord) -> str | None:
    """Why a running run is taken for dead, in words: its heartbeat is older than its lease (its process was
    killed, wherever it ran); None while it shows life, or when it is not running."""
    age = heartbeat_age(record)
    if age is None or age <= (record.lease_s or STALE_AFTER_S):
        return None
    silent = f"{age / 60:.0f} minutes" if age >= 60 else f"{age:.0f} seconds"
    return f"interrupted: no sign of life from its process for {silent}"


def as_seen(record: RunRecord) -> RunRecord:
    """The run as a reader should show it: a dead one as interrupted (a copy: reading never writes; a worker's
    sweep records it, :func:`settle_if_dead`)."""
    why = silence(record)
    if why is None:
        return record
    return replace(record, state=RunState.INTERRUPTED, message=why, eta_s=None, retryable=True)


def settle_if_dead(workspace: Workspace, record: RunRecord) -> RunRecord:
    """Record a dead running run as interrupted, so a worker may queue it again (the worker's sweep; checked
    against the state on disk under the run's lock)."""
    why = silence(record)
    if why is None:
        return record
    try:
        return interrupt_record(workspace, record, why, retryable=True)
    except IllegalTransition:  # it ended meanwhile: the record on disk says how
        return load_record(workspace, record.run_id)


def _stored_runs(workspace: Workspace) -> list[RunRecord]:
    """Every run as its folder holds it, newest first."""
    if not workspace.runs.is_dir():
        return []
    records = [_read_record(p) for p in workspace.runs.iterdir() if (p / RECORD_FILE).exists()]
    return sorted(records, key=lambda r: r.created_at + r.run_id, reverse=True)


def list_runs(workspace: Workspace) -> list[RunRecord]:
    """Every run, newest first, a dead running one shown as interrupted (nothing is written)."""
    return [as_seen(record) for record in _stored_runs(workspace)]


def settle_dead_runs(workspace: Workspace) -> list[RunRecord]:
    """Every run, newest first, after recording each dead running run as interrupted (the worker's sweep)."""
    return [settle_if_dead(workspace, record) for record in _stored_runs(workspace)]


#: Fixed when the run is created — what to train, on which data version, with which recipe — and never
#: changed after: the record's spec.
SPEC_FIELDS = frozenset({
    "run_id", "kind", "title", "dataset_ref", "dataset_fingerprint", "split_fingerprint", "labels", "preset",
    "hyperparameters", "settings", "created_at", "created_by", "max_train_examples", "recipe", "retry_of",
    "retries_used",
})


class RunHandle:
    """The live record of one run, shared between the training thread and readers; its one writer.

    The state changes only through :meth:`start`, :meth:`succeed`, :meth:`fail`, :meth:`cancel` and
    :meth:`interrupt`, each checked against TRANSITIONS; :meth:`report` writes progress and results, never the
    state or the spec, and refuses a field the record does not have (a misspelt name used to vanish on save).
    Readers take :meth:`snapshot` copies; both hold the lock, so nobody sees a torn record.
    """

    def __init__(self, workspace: Workspace, record: RunRecord,
                 on_change: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.workspace = workspace
        self._record = record
        self._on_change = on_change
        self._lock = threading.RLock()  # a transition checks and writes under one hold of it
        self._last_write = 0.0
        #: Whether a field of run.json changed since it was last written (a throttled change of a result field
        #: goes out with the next write, not only with the next state change).
        self._record_changed = True

    @property
    def run_id(self) -> str:
        return self._record.run_id

    def report(self, *, persist: bool | None = None, history: dict[str, Any] | None = None, **changes: Any) -> None:
        """Progress or results (and a point of the history); written to disk at once with ``persist``, else at
        most once a second."""
        unknown = sorted(set(changes) - _RECORD_FIELDS)
        if unknown:
            raise RunError(f"a run has no field {', '.join(unknown)}")
        fixed = sorted(set(changes) & (SPEC_FIELDS | {"state"}))
        if fixed:
            raise RunError(f"a run report cannot change {', '.join(fixed)}: the state changes only through "
                           "start, succeed, fail, cancel and interrupt, and the spec never changes")
        self._write(changes, history, persist)

    def _write(self, changes: dict[str, Any], history: dict[str, Any] | None, persist: bool | None) -> None:
        with self._lock:
            for key, value in changes.items():
                setattr(self._record, key, value)
            if history is not None:
                self._record.history.append(history)
                append_history(self.workspace, self.run_id, history)
            self._record_changed |= not set(changes) <= set(PROGRESS_FIELDS)
            now = time.monotonic()
            if persist or (persist is None and ("state" in changes or now - self._last_write >= PERSIST_INTERVAL_S)):
                if self._record_changed:
                    save_record(self.workspace, self._record)
                    self._record_changed = False
                else:
                    save_progress(self.workspace, self._record)
                self._last_write = now
        if self._on_change is not None:
            self._on_change(changes)

    def _become(self, state: RunState, **changes: Any) -> None:
        if state.finished:
            changes.setdefault("finished_at", now_iso())
            changes.setdefault("eta_s", None)
        with self._lock, run_lock(self.workspace, self.run_id):  # two threads or processes cannot both pass
            on_disk = stored_state(self.workspace, self.run_id)
            if on_disk is not self._record.state:
                raise IllegalTransition(f"run {self.run_id} is {on_disk.value} (changed by another process); it "
                                        f"cannot become {state.value}")
            check_transition(self._record, state)
            self._write({"state": state, **changes}, None, True)

    def start(self, owner: str, message: str = "preparing data", lease_s: float | None = None) -> None:
        """Queued → running, in the process named by ``owner``, which renews the heartbeat within ``lease_s``."""
        self._become(RunState.RUNNING, started_at=now_iso(), owner=owner, message=message, lease_s=lease_s)

    def succeed(self, **results: Any) -> None:
        """Running → succeeded, with its metrics, durations and model (the model folder is in place first)."""
        unknown = set(results) - _RECORD_FIELDS
        if unknown:
            raise RunError(f"a run result cannot set {', '.join(sorted(unknown))} (no such field)")
        self._become(RunState.SUCCEEDED, message="finished", **results)

    def fail(self, error: str) -> None:
        self._become(RunState.FAILED, error=error, message="failed")

    def cancel(self, message: str = "cancelled", cancelled_by: str | None = None) -> None:
        self._become(RunState.CANCELLED, message=message,
                     **({"cancelled_by": cancelled_by} if cancelled_by else {}))

    def interrupt(self, why: str) -> None:
        self._become(RunState.INTERRUPTED, message=why)

    def snapshot(self) -> RunRecord:
        with self._lock:
            return copy.deepcopy(self._record)


def retry_run(workspace: Workspace, record: RunRecord, counts: bool) -> RunRecord:
    """A new queued run with an interrupted run's spec, which then names it as its retry (once: a second
    call raises IllegalTransition). ``counts``: a retry after a lost worker, which ``worker.retries`` limits."""
    with run_lock(workspace, record.run_id):
        old = load_record(workspace, record.run_id)
        if old.state is not RunState.INTERRUPTED or old.retried_as:
            raise IllegalTransition(f"run {old.run_id} is {old.state.value}"
                                    + (f" and already retried as {old.retried_as}" if old.retried_as else ""))
        spec = {name: copy.deepcopy(getattr(old, name)) for name in SPEC_FIELDS}
        new = RunRecord(**{**spec, "run_id": new_run_id(old.kind), "created_at": now_iso(), "retry_of": old.run_id,
                           "retries_used": old.retries_used + int(counts)})
        save_record(workspace, new)
        old.retried_as = new.run_id
        save_record(workspace, old)
    return new


def create_run(workspace: Workspace, request: RunRequest, config: AppConfig, actor: Actor) -> RunRecord:
    """Write a queued run record for ``request`` (checking the dataset and the kind; ``actor`` is recorded)."""
    from core.models.model_kinds import model_kinds
    from core.models.pretrained import model_fingerprint
    from core.data.dataset_versions import DatasetError, load_dataset_version
    from core.data.person_labels import label_descriptions

    kinds = model_kinds()
    if request.kind not in kinds:
        raise RunError(f"unknown model {request.kind!r}; choose from {', '.join(kinds)}")
    try:
        version = load_dataset_version(workspace, request.dataset_ref)
        version.require_labels()
    except DatasetError as exc:
        raise RunError(str(exc)) from exc
    record = RunRecord(
        run_id=new_run_id(request.kind), kind=request.kind, title=kinds[request.kind].title,
        dataset_ref=version.ref, dataset_fingerprint=version.meta["fingerprint"],
        split_fingerprint=version.meta["split_fingerprint"], labels=version.labels,
        # as the record's JSON file will hold them (tuples as lists), so the model card's YAML reads them back
        preset=request.preset, hyperparameters=json.loads(json.dumps(asdict(kinds[request.kind].described(
            kinds[request.kind].settings_for(request.hyperparameters), label_descriptions(workspace, version.name))))),
        settings={"model": asdict(config.model), "training": {
            k: v for k, v in asdict(config.training).items() if not isinstance(v, dict)},
            "model_fingerprint": model_fingerprint(config.model.name) if kinds[request.kind].uses_pretrained else None},
        created_at=now_iso(), created_by=actor.username, max_train_examples=request.max_train_examples,
        recipe=request.recipe.with_overrides(request.hyperparameters).to_dict() if request.recipe else None,
    )
    save_record(workspace, record)
    return record
