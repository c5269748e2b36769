"""Topic discovery as a worker's job, and the topics' names saved as labels: the demo feedback's texts without
their labels are grouped by a real worker with progress, the topics named (two merged, one dropped, the texts
left out placed or not), and the result saved as a labelled draft whose every text says where its label came
from; cancelling and a silent worker are said in words."""

from __future__ import annotations

import dataclasses
import time
from datetime import datetime, timedelta, timezone

import pytest
from sklearn.metrics import adjusted_mutual_info_score

from core.accounts.audit import query_events
from core.data.cleaning import CleaningOptions
from core.data.dataset_versions import UNLABELLED_SPLIT, DatasetError
from core.data.ingest import DEMO_DATASET, read_feedback_file, records_from_list
from core.data.preparation import prepare_texts, save_unlabelled
from core.services import Caller, Studio
from core.services.topics import (
    JobState, TopicError, TopicLabels, cancel_topics, nearest_topic_of_each, save_topics_as_labels, split_topic,
    start_topics,
    topic_job, topic_jobs_of, topic_result,
)
from core.training.execution import training_data
from core.training.topic_jobs import as_seen, load_job
from tests.conftest import ANALYST, QueueWithWorker

ME = Caller(ANALYST)


def save_texts(workspace, config, rows: list[dict], name: str = "comments"):
    table = records_from_list(rows, source=f"{name}.jsonl")
    prepared = prepare_texts(table, "text", CleaningOptions(drop_invalid_rows=True, drop_duplicates=True), config)
    return save_unlabelled(workspace, name, prepared, ANALYST)


@pytest.fixture
def demo(isolated_workspace, config):
    """The demo feedback saved as texts without labels (its labels kept aside, to judge the topics by)."""
    rows = read_feedback_file(DEMO_DATASET, 10_000_000).records
    version = save_texts(isolated_workspace, config, [{"text": r["text"]} for r in rows])
    hidden = {r["text"]: r["label"] for r in rows}
    return version, [hidden[t] for t in version.frame()["text"]]


def test_a_worker_finds_the_topics_of_saved_texts_with_progress_and_they_are_saved_as_labels(isolated_workspace,
                                                                                               config, demo):
    version, hidden = demo
    studio = Studio(config)
    runner = QueueWithWorker(isolated_workspace, config)
    try:
        job = start_topics(studio, ME, version.ref)
        assert job.state is JobState.QUEUED and job.texts == len(hidden)
        seen_stages = set()
        for _ in range(1200):
            job = topic_job(studio, ME, job.job_id)
            seen_stages.add(job.stage.split(" (")[0])
            if job.state.finished:
                break
            time.sleep(0.1)
    finally:
        runner.close()
    assert job.state is JobState.DONE, job.error
    assert job.fraction == 1.0 and job.topics and job.topics >= 3
    assert any(stage.startswith("reading the texts") for stage in seen_stages), seen_stages
    assert [j.job_id for j in topic_jobs_of(studio, ME, version.ref)] == [job.job_id]

    job, result, texts = topic_result(studio, ME, job.job_id)
    found = result.found
    assert texts == version.frame()["text"].tolist() and len(found.assignment) == len(texts) == len(result.x)
    given = [-1 if t is None else t for t in found.assignment]
    assert adjusted_mutual_info_score(hidden, given) > 0.4
    assert found.unassigned > 0 and all(t.keywords and t.typical for t in found.topics)

    # split the largest topic: a new discovery, the first untouched
    split = split_topic(studio, ME, job.job_id, 0)
    _, finer, _ = topic_result(studio, ME, split.job_id)
    assert split.derived_from == job.job_id and "topic 1 split in" in split.name()
    assert len(finer.found.topics) > len(found.topics)
    added = {t.id for t in finer.found.topics} - {t.id for t in found.topics}
    for before, after in zip(found.assignment, finer.found.assignment):
        assert after == before if before != 0 else after in added | {0}
    assert topic_result(studio, ME, job.job_id)[1].found.assignment == found.assignment
    with pytest.raises(TopicError, match="there is no topic 99"):
        split_topic(studio, ME, job.job_id, 98)

    # name them: the first two merged under one name, the last dropped, the rest named; left-out texts placed
    names = {t.id: f"topic {t.id}" for t in found.topics}
    names[1] = names[0] = "merged"
    names[found.topics[-1].id] = ""
    nearest = nearest_topic_of_each(studio, ME, job.job_id)
    assert [n is None for n in nearest] == [t is not None for t in found.assignment]
    saved = save_topics_as_labels(studio, ME, job.job_id, "comments", TopicLabels(names, nearest))
    assert saved.ref == "comments/v2" and saved.partly_labelled
    frame = saved.frame()
    dropped = found.topics[-1].id
    in_dropped = [t == dropped or (t is None and n == dropped) for t, n in zip(found.assignment, nearest)]
    assert frame["label"].isna().tolist() == in_dropped
    assert set(frame.loc[frame["label"].isna(), "split"]) == {UNLABELLED_SPLIT}
    assert set(frame.loc[frame["label"].notna(), "split"]) == {"train", "validation", "test"}
    assert "merged" in saved.labels and len(saved.labels) == len(found.topics) - 2
    placed = frame[frame["label_source"] == "nearest topic"]
    assert len(placed) == sum(t is None and n != dropped for t, n in zip(found.assignment, nearest))
    assert (placed["membership"] == 0).all()
    from_topics = frame[frame["label_source"] == "topic"]
    assert from_topics["membership"].between(0, 1).all() and from_topics["topic"].min() >= 1
    assert saved.meta["unlabelled_rows"] == sum(in_dropped)
    assert saved.meta["label_sources"] == {"topic": len(from_topics), "nearest topic": len(placed)}
    data = training_data(saved)  # only labelled texts train
    assert len(data.train_texts) + len(data.validation_texts) < len(frame) - sum(in_dropped)
    events = query_events(studio.store, event_types=["topics_requested", "dataset_saved"])
    assert set(events["event_type"]) == {"topics_requested", "dataset_saved"}
    studio.close()


def test_a_discovery_cancelled_before_a_worker_takes_it_never_runs(isolated_workspace, config, demo):
    version, _ = demo
    studio = Studio(config)
    job = start_topics(studio, ME, version.ref, "fewer, broader")
    assert cancel_topics(studio, ME, job.job_id).state is JobState.CANCELLED
    runner = QueueWithWorker(isolated_workspace, config)
    try:
        time.sleep(1.5)
    finally:
        runner.close()
    job = topic_job(studio, ME, job.job_id)
    assert job.state is JobState.CANCELLED and job.cancelled_by == "ana" and job.started_at is None
    with pytest.raises(TopicError, match="cancelled: there are no topics"):
        topic_result(studio, ME, job.job_id)
    studio.close()


def test_too_few_texts_and_unknown_granularity_are_refused_before_anything_is_queued(isolated_workspace, config):
    version = save_texts(isolated_workspace, config, [{"text": f"text number {i}"} for i in range(5)], "five")
    studio = Studio(config)
    with pytest.raises(TopicError, match="5 text\\(s\\), 5 different: too few to group"):
        start_topics(studio, ME, version.ref)
    with pytest.raises(TopicError, match="unknown granularity 'tiny'"):
        start_topics(studio, ME, version.ref, "tiny")
    assert topic_jobs_of(studio, ME) == []
    studio.close()


def test_a_running_discovery_whose_worker_went_silent_reads_as_interrupted(isolated_workspace, config, demo):
    version, _ = demo
    studio = Studio(config)
    job = start_topics(studio, ME, version.ref)
    old = (datetime.now(timezone.utc) - timedelta(seconds=config.worker.lease_s + 5)).isoformat()
    running = dataclasses.replace(load_job(isolated_workspace, job.job_id), state=JobState.RUNNING, heartbeat_at=old)
    seen = as_seen(running, config.worker.lease_s)
    assert seen.state is JobState.INTERRUPTED and "start it again" in seen.error
    fresh = dataclasses.replace(running, heartbeat_at=datetime.now(timezone.utc).isoformat())
    assert as_seen(fresh, config.worker.lease_s).state is JobState.RUNNING
    studio.close()


def test_saving_fewer_than_two_label_names_is_refused_in_words(isolated_workspace, config, demo):
    from core.data.topic_labels import save_topic_labels
    from core.data.split import SplitPlan

    version, _ = demo
    assignment = [i % 3 for i in range(len(version.frame()))]
    with pytest.raises(DatasetError, match="1 label name\\(s\\) given"):
        save_topic_labels(isolated_workspace, "comments", version, assignment, [1.0] * len(assignment),
                          TopicLabels({0: "billing", 1: "", 2: "  "}), SplitPlan.from_config(config.split),
                          created_by="ana", topics_job="topics-x")
