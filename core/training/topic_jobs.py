"""Topic discovery as a job on the worker queue: the texts of a saved version embedded, grouped and drawn on a
map by a worker (``python -m core worker``), while the page that asked shows its progress and stays free.

A job lives in ``workspace/topics/<job id>/``: ``job.json`` (what was asked, its state, progress and estimate,
written by the worker), ``result.json`` (the topics, each text's topic and membership, its place on the 2-D map)
and ``embeddings.npy`` (for placing left-out texts in their nearest topic without embedding them again). The
queue carries only the job's id, as it does a run's. Cancelling leaves ``cancel.json`` in the folder; the worker
stops at its next batch. A worker stopped on purpose puts the job back on the queue; one killed leaves it
running with an old heartbeat, which reads as interrupted (start it again).
"""

from __future__ import annotations

import dataclasses
import secrets
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

from core.accounts.auth import Actor
from core.data.dataset_versions import DatasetError, load_dataset_version
from core.models.topics import GRANULARITY, Topic, TopicError, TopicMap, check_groupable, discover_topics
from core.platform.config import AppConfig
from core.platform.workspace import Workspace, read_json, write_json_atomic
from core.training.job_states import JobState, JobStopped, checked_job_folder, claim
from core.training.runs import now_iso

TOPICS_DIR = "topics"
JOB_FILE, RESULT_FILE, EMBEDDINGS_FILE, CANCEL_FILE, CLAIM_FILE = (
    "job.json", "result.json", "embeddings.npy", "cancel.json", "claimed")
#: Characters a text costs beyond its own in the estimate (tokenising and the model's fixed work per text).
TEXT_OVERHEAD_CHARS = 40
#: How often a running job rewrites its progress (seconds).
PROGRESS_EVERY_S = 1.0


@dataclass
class TopicJob:
    """One discovery: what was asked, and how far it got."""

    job_id: str
    dataset_ref: str
    granularity: str
    created_by: str
    created_at: str
    texts: int
    state: JobState = JobState.QUEUED
    stage: str = "waiting for a worker"
    done: int = 0
    total: int = 0
    fraction: float = 0.0
    eta_s: float | None = None
    owner: str | None = None
    started_at: str | None = None
    heartbeat_at: str | None = None
    finished_at: str | None = None
    error: str | None = None
    cancelled_by: str | None = None
    topics: int | None = None
    unassigned: int | None = None
    #: A job made from another by splitting one of its topics: that job (whose embeddings it reads) and how.
    derived_from: str | None = None
    change: str | None = None

    def name(self, when: Callable[[str], str] = str) -> str:
        """How a person reads it: "Topics of feedback/v1, 25 Nov 14:02 (as found)", and what changed since."""
        return (f"Topics of {self.dataset_ref}, {when(self.created_at)} ({self.granularity}"
                + (f"; {self.change})" if self.change else ")"))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "state": self.state.value}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TopicJob":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{**{k: v for k, v in data.items() if k in known}, "state": JobState(data["state"])})


@dataclass
class TopicResult:
    """What a finished job found: the topics, and per text its topic (None: none), membership and map place."""

    found: TopicMap
    x: list[float]
    y: list[float]

    def to_dict(self) -> dict[str, Any]:
        found = self.found
        return {"topics": [asdict(t) for t in found.topics], "assignment": found.assignment,
                "membership": found.membership, "smallest_topic": found.smallest_topic, "seconds": found.seconds,
                "x": self.x, "y": self.y}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TopicResult":
        found = TopicMap([Topic(**t) for t in data["topics"]], data["assignment"], data["membership"],
                         data["smallest_topic"], data["seconds"])
        return cls(found, data["x"], data["y"])


def topics_folder(workspace: Workspace) -> Path:
    return workspace.root / TOPICS_DIR


def job_folder(workspace: Workspace, job_id: str) -> Path:
    """The job's folder; an id that is not one of ours is refused (it names a path)."""
    return checked_job_folder(topics_folder(workspace), job_id, "topics-",
                              lambda bad: DatasetError(f"{bad!r} is not a topic discovery's id"))


def save_job(workspace: Workspace, job: TopicJob) -> None:
    write_json_atomic(job_folder(workspace, job.job_id) / JOB_FILE, job.to_dict())


def load_job(workspace: Workspace, job_id: str) -> TopicJob:
    path = job_folder(workspace, job_id) / JOB_FILE
    try:
        return TopicJob.from_dict(read_json(path))
    except FileNotFoundError:
        raise DatasetError(f"no topic discovery {job_id!r}") from None


def as_seen(job: TopicJob, lease_s: float, now: datetime | None = None) -> TopicJob:
    """A running job whose worker has not written for longer than the lease reads as interrupted."""
    if job.state is JobState.RUNNING and job.heartbeat_at:
        age = (now or datetime.now(timezone.utc)) - datetime.fromisoformat(job.heartbeat_at)
        if age > timedelta(seconds=lease_s):
            return dataclasses.replace(job, state=JobState.INTERRUPTED, eta_s=None,
                                       error="its worker stopped answering (it was stopped or killed); start it again")
    return job


def list_jobs(workspace: Workspace, lease_s: float, dataset_ref: str | None = None) -> list[TopicJob]:
    """Every discovery (of one version, if given), newest first, as a person should read its state."""
    folder = topics_folder(workspace)
    jobs = []
    for child in folder.iterdir() if folder.is_dir() else []:
        try:
            job = TopicJob.from_dict(read_json(child / JOB_FILE))
        except (OSError, ValueError, TypeError, KeyError):
            continue
        if dataset_ref is None or job.dataset_ref == dataset_ref:
            jobs.append(as_seen(job, lease_s))
    return sorted(jobs, key=lambda j: j.created_at, reverse=True)


def create_job(workspace: Workspace, dataset_ref: str, granularity: str, actor: Actor,
               config: AppConfig) -> TopicJob:
    """Write a queued job for the texts of ``dataset_ref`` (checked first: the version exists and has texts
    enough to group)."""
    if granularity not in GRANULARITY:
        raise TopicError(f"unknown granularity {granularity!r}; choose from {', '.join(GRANULARITY)}")
    version = load_dataset_version(workspace, dataset_ref)
    check_groupable(version.frame()["text"].astype(str).tolist(), config.topics)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    job = TopicJob(f"topics-{stamp}-{secrets.token_hex(3)}", version.ref, granularity, actor.username, now_iso(),
                   texts=int(version.meta["rows"]))
    job_folder(workspace, job.job_id).mkdir(parents=True)
    save_job(workspace, job)
    return job


def request_cancel(workspace: Workspace, job_id: str, actor: Actor) -> TopicJob:
    """Cancel a queued job now; ask the worker to stop a running one at its next batch."""
    write_json_atomic(job_folder(workspace, job_id) / CANCEL_FILE, {"by": actor.username, "at": now_iso()})
    job = load_job(workspace, job_id)
    if job.state is JobState.QUEUED and _claim(workspace, job_id):
        job = dataclasses.replace(job, state=JobState.CANCELLED, stage="cancelled before it started",
                                  cancelled_by=actor.username, finished_at=now_iso())
        save_job(workspace, job)
    return job


def _claim(workspace: Workspace, job_id: str) -> bool:
    """Take the job for good (one worker, or the cancel before any worker): False when someone has it."""
    return claim(job_folder(workspace, job_id) / CLAIM_FILE)


def release(workspace: Workspace, job: TopicJob) -> None:
    """Put a job its worker stopped on purpose back as queued (the worker queues it again)."""
    save_job(workspace, dataclasses.replace(job, state=JobState.QUEUED, stage="waiting for a worker", owner=None,
                                            eta_s=None))
    (job_folder(workspace, job.job_id) / CLAIM_FILE).unlink(missing_ok=True)


def load_result(workspace: Workspace, job_id: str) -> TopicResult:
    return TopicResult.from_dict(read_json(job_folder(workspace, job_id) / RESULT_FILE))


def load_embeddings(workspace: Workspace, job_id: str) -> np.ndarray:
    """The texts' embeddings of a job (a derived job's: its origin's)."""
    job = load_job(workspace, job_id)
    return np.load(job_folder(workspace, job.derived_from or job_id) / EMBEDDINGS_FILE)


def split_job_topic(workspace: Workspace, job_id: str, topic_id: int, config: AppConfig, actor: Actor) -> TopicJob:
    """A new finished job: ``job_id``'s topics with one split into the finer topics its texts form (grouped here,
    at once: its size is capped by ``topics.split_max_texts``); the job it came from stays as it was."""
    from core.models.topics import split_topic

    origin = load_job(workspace, job_id)
    if origin.state is not JobState.DONE:
        raise TopicError(f"{origin.name()} is {origin.state.value}: there are no topics to split")
    result = load_result(workspace, job_id)
    texts = load_dataset_version(workspace, origin.dataset_ref).frame()["text"].astype(str).tolist()
    found = split_topic(result.found, topic_id, texts, load_embeddings(workspace, job_id), config.topics,
                        config.training.seed)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    added = len(found.topics) - len(result.found.topics) + 1
    earlier = f"{origin.change}; " if origin.change else ""
    job = dataclasses.replace(
        origin, job_id=f"topics-{stamp}-{secrets.token_hex(3)}", created_by=actor.username, created_at=now_iso(),
        derived_from=origin.derived_from or job_id, change=f"{earlier}topic {topic_id + 1} split in {added}",
        topics=len(found.topics), unassigned=found.unassigned, finished_at=now_iso())
    folder = job_folder(workspace, job.job_id)
    folder.mkdir(parents=True)
    write_json_atomic(folder / RESULT_FILE, TopicResult(found, result.x, result.y).to_dict())
    save_job(workspace, job)
    return job


class _Progress:
    """Writes a running job's stage, progress and estimate (at most every ``PROGRESS_EVERY_S``) and stops it when
    asked to."""

    def __init__(self, workspace: Workspace, job: TopicJob, stop: threading.Event) -> None:
        self.workspace, self.job, self.stop = workspace, job, stop
        self.started, self.written = time.monotonic(), 0.0

    def check(self) -> None:
        if self.stop.is_set():
            raise JobStopped("the worker is stopping")
        request = job_folder(self.workspace, self.job.job_id) / CANCEL_FILE
        if request.exists():
            self.job.cancelled_by = (read_json(request) or {}).get("by")
            raise JobStopped("cancelled")

    def stage(self, words: str, fraction: float | None = None, eta_s: float | None = None, force: bool = True,
              **counts: int) -> None:
        self.check()
        now = time.monotonic()
        if not force and now - self.written < PROGRESS_EVERY_S:
            return
        self.written = now
        self.job = dataclasses.replace(self.job, stage=words, heartbeat_at=now_iso(), eta_s=eta_s,
                                       fraction=self.job.fraction if fraction is None else fraction, **counts)
        save_job(self.workspace, self.job)


def _embed(texts: list[str], config: AppConfig, progress: _Progress) -> np.ndarray:
    """The texts' sentence embeddings, with progress and an estimate by characters (the encoder works through
    the texts shortest first, so counting texts would promise too early an end)."""
    from core.models.embeddings import shared_encoder

    progress.stage("loading the model")
    encoder = shared_encoder(config.model.name, config.model.max_length)
    work = np.cumsum(sorted(min(len(t), 4 * config.model.max_length) + TEXT_OVERHEAD_CHARS for t in texts))
    started = time.monotonic()

    def on_batch(done: int) -> None:
        share = float(work[done - 1] / work[-1])
        spent = time.monotonic() - started
        progress.stage(f"reading the texts ({done:,} of {len(texts):,})", fraction=0.8 * share,
                       eta_s=spent * (1 - share) / share if share > 0 else None, force=done == len(texts),
                       done=done, total=len(texts))

    return encoder.encode(texts, on_batch)


def _map(embeddings: np.ndarray, config: AppConfig) -> np.ndarray:
    """Two coordinates per text for the map (UMAP on the embeddings, as the grouping sees them)."""
    from umap import UMAP

    neighbours = min(config.topics.neighbours, len(embeddings) - 1)
    return UMAP(n_neighbors=neighbours, n_components=2, min_dist=0.1, metric="cosine",
                random_state=config.training.seed, n_jobs=1).fit_transform(embeddings)


def execute_job(workspace: Workspace, job_id: str, config: AppConfig, owner: str, stop: threading.Event) -> TopicJob:
    """Run one queued job to its end (done, failed, cancelled); one someone else has is left alone (None back
    from the claim: returns it as it is). A stop of the worker raises JobStopped for the worker to queue it
    again."""
    if not _claim(workspace, job_id):
        return load_job(workspace, job_id)
    job = dataclasses.replace(load_job(workspace, job_id), state=JobState.RUNNING, owner=owner,
                              started_at=now_iso(), heartbeat_at=now_iso())
    save_job(workspace, job)
    progress = _Progress(workspace, job, stop)
    try:
        texts = load_dataset_version(workspace, job.dataset_ref).frame()["text"].astype(str).tolist()
        vectors = _embed(texts, config, progress)
        progress.stage(f"grouping {len(texts):,} texts into topics", fraction=0.85)
        found = discover_topics(texts, vectors, config.topics, config.training.seed, GRANULARITY[job.granularity])
        progress.stage("drawing the map", fraction=0.92)
        coordinates = _map(vectors, config)
        progress.check()
        folder = job_folder(workspace, job_id)
        np.save(folder / EMBEDDINGS_FILE, vectors)
        write_json_atomic(folder / RESULT_FILE, TopicResult(found, coordinates[:, 0].round(4).tolist(),
                                                            coordinates[:, 1].round(4).tolist()).to_dict())
        final = dataclasses.replace(progress.job, state=JobState.DONE, stage="done", fraction=1.0, eta_s=None,
                                    topics=len(found.topics), unassigned=found.unassigned)
    except JobStopped:
        if stop.is_set():
            release(workspace, progress.job)
            raise
        final = dataclasses.replace(progress.job, state=JobState.CANCELLED, stage="cancelled", eta_s=None)
    except (TopicError, DatasetError) as why:
        final = dataclasses.replace(progress.job, state=JobState.FAILED, stage="failed", error=str(why), eta_s=None)
    except Exception as why:  # anything else: the job says so rather than hanging as running
        final = dataclasses.replace(progress.job, state=JobState.FAILED, stage="failed", eta_s=None,
                                    error=f"{type(why).__name__}: {why}")
    final = dataclasses.replace(final, finished_at=now_iso(), heartbeat_at=now_iso())
    save_job(workspace, final)
    return final
