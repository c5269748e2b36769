"""Training runs: planning the transformer's recipe, starting runs on the queue, following, cancelling and
deleting them. Also names the words of runs callers use (requests, records, states, recipes)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from core.training.worker import Worker

from core.accounts.audit import EventType
from core.training.outcomes import record_run_outcome
from core.accounts.auth import Permission
from core.serving.publishing import delete_run as delete_run_files
from core.models.model_kinds import model_kinds
from core.models.transformer import typical_batch
from core.platform.config import POOLINGS, PRESET_NAMES, AppConfig, Hyperparameters
from core.platform.store import Store
from core.platform.workspace import Workspace
from core.data.dataset_versions import DatasetVersion
from core.training.recipe import DataProfile, KindChoice, Recipe, choose_kinds, few_shot_seconds, plan_recipe
from core.training.speed import SpeedError, SpeedQuestion, ask_speed
from core.models.classifiers import ModelFileError
from core.training.runs import (
    RunError, RunHandle, RunRecord, RunRequest, RunState, create_run, list_runs, load_record, run_folder, run_name,
    run_namer,
)
from core.training.execution import execute_run, measured_plan, timed_plan, version_profile
from core.services.file_jobs import keep_job_predictions
from core.services.studio import Caller, Studio

#: Who may see the runs: those who train and evaluate them, and admins reading the logs.
SEE_RUNS = (Permission.TRAIN, Permission.EVALUATE, Permission.VIEW_LOGS)


def runs(studio: Studio, caller: Caller) -> list[RunRecord]:
    """Every run, newest first, as its worker last wrote it."""
    caller.require_any(*SEE_RUNS)
    return list_runs(studio.workspace)


def run(studio: Studio, caller: Caller, run_id: str) -> RunRecord:
    """One run's record; RunError when there is none of that id."""
    caller.require_any(*SEE_RUNS, Permission.CLASSIFY)
    return load_record(studio.workspace, run_id)


def follow_run(studio: Studio, caller: Caller, run_id: str) -> RunRecord:
    """A run's latest state and progress as its worker last wrote it (a dead one shown as interrupted)."""
    caller.require_any(*SEE_RUNS)
    return studio.jobs.snapshot(run_id)


def active_runs(studio: Studio, caller: Caller, listed: list[RunRecord] | None = None) -> list[RunRecord]:
    """Runs queued or training on any worker, the running ones first, then the queue in its order (``listed``:
    runs already read with :func:`runs`, so a poll reads the run folders once)."""
    caller.require_any(*SEE_RUNS)
    return studio.jobs.active(listed)


def workers_online(studio: Studio, caller: Caller) -> int:
    """How many training workers announced themselves lately (none: queued runs wait)."""
    caller.require_any(*SEE_RUNS)
    return len(studio.jobs.workers())


def name_of_run(studio: Studio, caller: Caller, run_id: str | None) -> str:
    """A run's readable name by id ("Fine-tuned transformer, 25 Nov 14:02, feedback/v1")."""
    caller.require_any(*SEE_RUNS)
    return run_name(studio.workspace, run_id)


def _data_profile(studio: Studio, version: DatasetVersion, limit: int | None) -> tuple[DataProfile, list[str]]:
    """The training split's shape as the recipe reads it, and its texts; worked out once per version."""
    config = studio.config
    key = ("data_profile", version.ref, version.meta["fingerprint"], limit, config.model.name, config.model.max_length,
           config.training.seed)
    return studio.remembered(key, lambda: version_profile(version, config, limit))


def _worker_speed(studio: Studio, config: AppConfig, texts: list[str], batch_size: int) -> float | None:
    """The training speed as a worker measured it (asked once per model, length, batch and sample); None until
    one has answered."""
    return ask_speed(studio.workspace, SpeedQuestion(config.model.name, config.model.max_length, batch_size,
                                                     tuple(typical_batch(texts, batch_size))))


def transformer_plan(studio: Studio, caller: Caller, version: DatasetVersion, preset: str,
                     limit: int | None) -> Recipe:
    """The fine-tuning recipe for this data and preset with the training machine's speed; its ``speed`` is None
    until a training worker has measured it (ask again: the page polls); SpeedError when it could not."""
    caller.require(Permission.TRAIN)
    profile, texts = _data_profile(studio, version, limit)
    return timed_plan(profile, texts, preset, studio.config,
                      measure=lambda config, sample, batch: _worker_speed(studio, config, sample, batch))


def few_shot_estimate(studio: Studio, caller: Caller, version: DatasetVersion, preset: str,
                      limit: int | None) -> float | None:
    """Seconds the few-shot kind will take on the training machine, start to finish; None until a worker has
    measured its speed (the transformer's question at the preset's batch size: one measurement serves both)."""
    caller.require(Permission.TRAIN)
    profile, texts = _data_profile(studio, version, limit)
    batch = plan_recipe(profile, preset, studio.config.training.goal(preset)).hyperparameters.batch_size
    speed = _worker_speed(studio, studio.config, texts, batch)
    settings = model_kinds()["few_shot"].Settings()
    return None if speed is None else few_shot_seconds(profile, settings, speed)


def kinds_for(studio: Studio, caller: Caller, version: DatasetVersion, usual: tuple[str, ...],
              limit: int | None = None) -> KindChoice:
    """The model kinds to tick for this version (the usual ones, and few-shot when its labels have only a
    handful of texts each), with the reason in words."""
    caller.require(Permission.TRAIN)
    profile, _ = _data_profile(studio, version, limit)
    return choose_kinds(profile, usual)


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


def measured_transformer_plan(studio: Studio, caller: Caller, version: DatasetVersion, preset: str,
                              limit: int | None) -> Recipe:
    """The fine-tuning recipe with the speed measured here and now (a few seconds): the command line's plan."""
    caller.require(Permission.TRAIN)
    return measured_plan(version, preset, studio.config, limit)


def run_location(studio: Studio, caller: Caller, run_id: str) -> Path:
    """The run's folder (its record, model, card and scores), for people with a shell on the server."""
    caller.require_any(*SEE_RUNS)
    return run_folder(studio.workspace, run_id)


def train_queued_run(studio: Studio, caller: Caller, run_id: str,
                     on_change: Callable[[dict], None] | None = None) -> RunRecord:
    """Train a queued run here (a running one is taken as claimed by the worker that launched this process);
    the worker that queued or claimed it records how it ends. RunError for a finished run."""
    caller.require(Permission.TRAIN)
    record = load_record(studio.workspace, run_id)
    if record.state.finished:
        raise RunError(f"run {record.run_id} is {record.state.value}; only a queued run can be trained")
    handle = RunHandle(studio.workspace, record, on_change=on_change)
    return execute_run(studio.workspace, handle, studio.config, threading.Event())


def worker(config: AppConfig, workspace: Workspace | None = None, store: Store | None = None,
           config_path: str | None = None) -> "Worker":
    """A worker as the app runs it: its file jobs' predictions logged for monitoring and queued for review."""
    from core.training.worker import Worker

    return Worker(config, workspace, store, config_path,
                  on_scored=lambda db, job, texts, predictions: keep_job_predictions(db, config, job, texts,
                                                                                      predictions))


def serve_as_worker(config: AppConfig, config_path: str | None) -> None:
    """Train queued runs, one at a time, until SIGTERM or Ctrl-C (``python -m core worker``)."""
    worker(config, config_path=config_path).serve()


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


__all__ = [
    "DataProfile", "KindChoice", "Hyperparameters", "ModelFileError", "POOLINGS", "PRESET_NAMES", "Recipe", "RunError",
    "RunRecord", "RunRequest", "RunState", "SEE_RUNS", "SpeedError", "active_runs", "cancel_run", "delete_run",
    "follow_run", "measured_transformer_plan", "model_kinds", "name_of_run", "run", "run_location", "run_namer",
    "few_shot_estimate", "kinds_for", "runs", "serve_as_worker", "start_runs", "train_here", "train_queued_run",
    "transformer_plan", "worker", "workers_online",
]
