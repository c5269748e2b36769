"""Topic discovery as use cases: a version's texts grouped into topics by a worker (core.training.topic_jobs),
followed on the Topics page, and the topics' names saved as labels (core.data.topic_labels); and, for the
command line, a file's texts grouped in the calling process (core.models.topics). Each audited."""

from __future__ import annotations

from typing import Callable, Sequence

from core.accounts.audit import EventType
from core.accounts.auth import Permission
from core.data.dataset_versions import DatasetError, DatasetVersion, load_dataset_version
from core.data.split import SplitPlan
from core.data.topic_labels import FROM_NEAREST_TOPIC, TopicLabels, save_topic_labels
from core.models.embeddings import shared_encoder
from core.models.topics import (
    GRANULARITY, Topic, TopicError, TopicMap, check_groupable, discover_topics, nearest_topics, place_unassigned,
)
from core.services.studio import Caller, Studio
from core.training import topic_jobs
from core.training.topic_jobs import JobState, TopicJob, TopicResult

__all__ = ["FROM_NEAREST_TOPIC", "GRANULARITY", "JobState", "Topic", "TopicError", "TopicJob", "TopicLabels",
           "TopicMap", "TopicResult", "cancel_topics", "find_topics", "nearest_topic_of_each", "save_topics_as_labels",
           "split_topic", "start_topics", "topic_job", "topic_jobs_of", "topic_result"]

#: ``progress(texts embedded, texts)`` while the texts are embedded (the slow part on a CPU).
EmbedProgress = Callable[[int, int], None]


def find_topics(studio: Studio, caller: Caller, texts: Sequence[str], source: str, granularity: float = 1.0,
                progress: EmbedProgress | None = None, place_left_out: bool = False) -> TopicMap:
    """Embed ``texts`` with the configured model and group them into topics here (the command line); ``source``
    names them in the log. With ``place_left_out``, the texts the grouping left out go to their nearest topic."""
    caller.require(Permission.MANAGE_DATA)
    config = studio.config
    check_groupable(texts, config.topics)  # before the minutes of embedding
    encoder = shared_encoder(config.model.name, config.model.max_length)
    vectors = encoder.encode([str(t) for t in texts],
                             None if progress is None else lambda done: progress(done, len(texts)))
    found = discover_topics(texts, vectors, config.topics, config.training.seed, granularity)
    if place_left_out:
        found = place_unassigned(found, vectors)
    studio.audit(caller, EventType.TOPICS_DISCOVERED, file=source, texts=len(texts), topics=len(found.topics),
                 unassigned=found.unassigned, placed=len(found.placed), seconds=round(found.seconds, 1))
    return found


def start_topics(studio: Studio, caller: Caller, dataset_ref: str, granularity: str = "as found") -> TopicJob:
    """Queue the discovery of a saved version's topics for a worker; the page follows it with :func:`topic_job`."""
    job = studio.jobs.submit_topics(dataset_ref, granularity, caller.require(Permission.MANAGE_DATA))
    studio.audit(caller, EventType.TOPICS_REQUESTED, dataset=job.dataset_ref, texts=job.texts,
                 granularity=granularity, job=job.job_id)
    return job


def topic_jobs_of(studio: Studio, caller: Caller, dataset_ref: str | None = None) -> list[TopicJob]:
    """The discoveries asked for (of one version, if given), newest first."""
    caller.require(Permission.MANAGE_DATA)
    return topic_jobs.list_jobs(studio.workspace, studio.config.worker.lease_s, dataset_ref)


def topic_job(studio: Studio, caller: Caller, job_id: str) -> TopicJob:
    caller.require(Permission.MANAGE_DATA)
    return studio.jobs.topic_job(job_id)


def cancel_topics(studio: Studio, caller: Caller, job_id: str) -> TopicJob:
    """Cancel a queued discovery at once, a running one at its worker's next batch."""
    return topic_jobs.request_cancel(studio.workspace, job_id, caller.require(Permission.MANAGE_DATA))


def topic_result(studio: Studio, caller: Caller, job_id: str) -> tuple[TopicJob, TopicResult, list[str]]:
    """A finished discovery, what it found, and the texts it grouped (in the version's order)."""
    caller.require(Permission.MANAGE_DATA)
    job = studio.jobs.topic_job(job_id)
    if job.state is not JobState.DONE:
        raise TopicError(f"{job.name()} is {job.state.value}: there are no topics to show")

    def read() -> tuple[TopicResult, list[str]]:
        texts = load_dataset_version(studio.workspace, job.dataset_ref).frame()["text"].astype(str).tolist()
        return topic_jobs.load_result(studio.workspace, job_id), texts

    # a finished discovery and its version never change: read once, not on every run of the Topics page
    result, texts = studio.remembered(("topic result", job_id), read)
    return job, result, texts


def nearest_topic_of_each(studio: Studio, caller: Caller, job_id: str) -> list[int | None]:
    """For each text a discovery left out, the topic it is closest to (None for texts in a topic)."""
    caller.require(Permission.MANAGE_DATA)
    result = topic_jobs.load_result(studio.workspace, job_id)
    return nearest_topics(result.found, topic_jobs.load_embeddings(studio.workspace, job_id))


def split_topic(studio: Studio, caller: Caller, job_id: str, topic_id: int) -> TopicJob:
    """Split one topic of a finished discovery into the finer topics its texts form, as a new discovery (the
    first stays as it was); TopicError, in words, when they form none or the topic is too large to split here."""
    actor = caller.require(Permission.MANAGE_DATA)
    job = topic_jobs.split_job_topic(studio.workspace, job_id, topic_id, studio.config, actor)
    studio.audit(caller, EventType.TOPICS_DISCOVERED, dataset=job.dataset_ref, job=job.job_id, split_from=job_id,
                 topic=topic_id + 1, topics=job.topics)
    return job


def save_topics_as_labels(studio: Studio, caller: Caller, job_id: str, name: str, decided: TopicLabels,
                          plan: SplitPlan | None = None) -> DatasetVersion:
    """Save the texts of a discovery's version labelled by the names given to their topics, as the next version
    of ``name`` (core.data.topic_labels)."""
    actor = caller.require(Permission.MANAGE_DATA)
    job = studio.jobs.topic_job(job_id)
    if job.state is not JobState.DONE:
        raise DatasetError(f"{job.name()} is {job.state.value}: there are no topics to save")
    result = topic_jobs.load_result(studio.workspace, job_id)
    version = load_dataset_version(studio.workspace, job.dataset_ref)
    saved = save_topic_labels(studio.workspace, name, version, result.found.assignment, result.found.membership,
                              decided, plan or SplitPlan.from_config(studio.config.split), created_by=actor.username,
                              topics_job=job_id)
    studio.audit(caller, EventType.DATASET_SAVED, dataset=saved.ref, rows=saved.meta["rows"], source=version.ref,
                 labels=len(saved.labels), from_topics=job_id, unlabelled=saved.meta["unlabelled_rows"])
    return saved
