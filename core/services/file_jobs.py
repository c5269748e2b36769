"""Classifying a big file in the background, as use cases: ask for it, follow it, cancel it, take its result.

A file with more rows than ``classify.instant_rows`` is classified as a job on the worker queue
(core.training.file_jobs): the page, the API and the command line hand it over and return at once; a person sees
their own jobs (whoever may view logs sees everyone's), with progress and the time left.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

from core.accounts.audit import EventType
from core.accounts.auth import Actor, Permission, Role
from core.models.predict import Prediction
from core.platform.config import AppConfig
from core.platform.store import Store
from core.serving.monitoring import record_predictions
from core.serving.review_queue import BELOW_THRESHOLD, enqueue, margin, to_queue
from core.serving.runtime import serving_check, serving_precision
from core.services.classification import NothingPublished, review_threshold
from core.services.studio import Caller, Studio
from core.training import file_jobs
from core.training.file_jobs import FileJob, FileJobError, JobState, Progress

__all__ = ["FileJob", "FileJobError", "JobState", "Progress", "cancel_file_job", "classify_file_later", "file_job",
           "file_job_result", "file_jobs_of", "keep_job_predictions"]


#: How a job's predictions are logged for monitoring (the page's are "single" or "batch").
JOB_SOURCE = "file job"


def classify_file_later(studio: Studio, caller: Caller, source: Path | bytes | IO[bytes], file_name: str,
                        text_field: str, threshold: float | None = None, sheet: str | None = None) -> FileJob:
    """Queue the file (on disk at ``source``, or its bytes) to be classified by the published model in the background, with
    its serving variant and the run's suggested review threshold unless one is given."""
    actor = caller.require(Permission.CLASSIFY)
    loaded = studio.published.current()
    if loaded is None:
        raise NothingPublished()
    record = loaded[1]
    if threshold is None:
        threshold = review_threshold(studio, record).value
    variant = serving_precision(record, studio.config, serving_check(studio.workspace, record))  # as served here
    job = studio.jobs.submit_file(source, file_name, text_field, record, variant, threshold, actor, sheet)
    studio.audit(caller, EventType.FILE_JOB_STARTED, job=job.job_id, file=job.file_name, run=record.run_id)
    return job


def keep_job_predictions(store: Store, config: AppConfig, job: FileJob, texts: list[Any],
                         predictions: list[Prediction]) -> None:
    """A piece of a file job, scored by a worker: its predictions logged for Admin › Monitoring as a file
    classified on the page is (source "file job"), and its texts for the review queue chosen the same way, the
    least certain flagged ones first up to ``review.job_queue_per_piece``."""
    record_predictions(store, Actor(job.created_by, Role.USER), None, job.run_id, zip(texts, predictions),
                       JOB_SOURCE, config.storage.store_prediction_texts)
    if not config.review.enabled:
        return
    chosen = to_queue(zip(texts, predictions), config.review)
    flagged = sorted((c for c in chosen if c[2] == BELOW_THRESHOLD), key=lambda c: margin(c[1]))
    sampled = [c for c in chosen if c[2] != BELOW_THRESHOLD]
    enqueue(store, job.run_id, job.created_by, flagged[:config.review.job_queue_per_piece] + sampled, config.review)


def _may_see(actor: Actor, job: FileJob) -> None:
    if job.created_by != actor.username and not actor.can(Permission.VIEW_LOGS):
        raise FileJobError(f"no file job {job.job_id!r} of yours")


def file_jobs_of(studio: Studio, caller: Caller) -> list[Progress]:
    """The caller's file jobs, newest first, each with its progress (everyone's for whoever may view logs)."""
    actor = caller.require(Permission.CLASSIFY)
    mine = None if actor.can(Permission.VIEW_LOGS) else actor.username
    return [file_jobs.progress(studio.workspace, job) for job in file_jobs.list_jobs(studio.workspace, mine)]


def file_job(studio: Studio, caller: Caller, job_id: str) -> Progress:
    """One of the caller's file jobs as it stands."""
    actor = caller.require(Permission.CLASSIFY)
    job = file_jobs.load_job(studio.workspace, job_id)
    _may_see(actor, job)
    return file_jobs.progress(studio.workspace, job)


def cancel_file_job(studio: Studio, caller: Caller, job_id: str) -> FileJob:
    """Stop one of the caller's file jobs: nothing more is scored, and there is no result."""
    actor = caller.require(Permission.CLASSIFY)
    job = file_jobs.load_job(studio.workspace, job_id)
    _may_see(actor, job)
    if job.state.finished:
        return job
    job = file_jobs.request_cancel(studio.workspace, job_id, actor)
    studio.audit(caller, EventType.FILE_JOB_CANCELLED, job=job_id, file=job.file_name)
    return job


def file_job_result(studio: Studio, caller: Caller, job_id: str) -> tuple[Path, str]:
    """The finished job's result file and the name to download it as."""
    actor = caller.require(Permission.CLASSIFY)
    job = file_jobs.load_job(studio.workspace, job_id)
    _may_see(actor, job)
    if job.state is not JobState.DONE:
        raise FileJobError(f"{job.name} is {job.state.value}: there is no result to download")
    return file_jobs.result_path(studio.workspace, job), job.result_name
