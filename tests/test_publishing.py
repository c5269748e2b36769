"""Publishing: recorded, reversible, atomic under concurrent use."""

from __future__ import annotations

import json
import threading

import pytest

from core.accounts.auth import Actor, Role

from core.serving.publishing import (
    STATE_FILE, PublishError, compare_with_published, current_publication, publication_history, publish, published_run, restore_previous,
)
from core.training.runs import RunState, save_record
from tests.conftest import save_demo_version, train_runs


@pytest.fixture
def two_runs(isolated_workspace, config):
    version = save_demo_version(isolated_workspace, config)
    return train_runs(isolated_workspace, config, version)


def test_publish_records_who_and_when_and_restore_goes_back(isolated_workspace, two_runs):
    first, second = two_runs
    assert current_publication(isolated_workspace) is None and published_run(isolated_workspace) is None
    publish(isolated_workspace, first.run_id, Actor("ana", Role.ANALYST))
    latest = publish(isolated_workspace, second.run_id, Actor("ben", Role.ANALYST))
    assert (latest.run_id, latest.published_by, latest.replaced) == (second.run_id, "ben", first.run_id)
    assert latest.published_at.endswith("+00:00")
    assert published_run(isolated_workspace).run_id == second.run_id

    restored = restore_previous(isolated_workspace, Actor("ana", Role.ANALYST))
    assert (restored.run_id, restored.action, restored.replaced) == (first.run_id, "restore", second.run_id)
    assert published_run(isolated_workspace).run_id == first.run_id
    history = publication_history(isolated_workspace)
    assert [(p.run_id, p.published_by, p.action) for p in history] == [
        (first.run_id, "ana", "publish"), (second.run_id, "ben", "publish"), (first.run_id, "ana", "restore")]


def test_unpublishable_runs_are_refused_and_change_nothing(isolated_workspace, two_runs):
    first, second = two_runs
    with pytest.raises(PublishError, match="there is no previously published model"):
        restore_previous(isolated_workspace, Actor("ana", Role.ANALYST))
    publish(isolated_workspace, first.run_id, Actor("ana", Role.ANALYST))
    with pytest.raises(PublishError, match="already the published model"):
        publish(isolated_workspace, first.run_id, Actor("ana", Role.ANALYST))
    with pytest.raises(PublishError, match="no run 'nope'"):
        publish(isolated_workspace, "nope", Actor("ana", Role.ANALYST))
    second.state = RunState.FAILED
    save_record(isolated_workspace, second)
    with pytest.raises(PublishError, match="only finished runs can be published"):
        publish(isolated_workspace, second.run_id, Actor("ana", Role.ANALYST))
    assert current_publication(isolated_workspace).run_id == first.run_id
    assert len(publication_history(isolated_workspace)) == 1


def test_concurrent_publishing_never_exposes_a_half_written_state(isolated_workspace, two_runs):
    """Writers alternate the two runs while a reader keeps reading: every read is whole and consistent."""
    first, second = two_runs
    publish(isolated_workspace, first.run_id, Actor("setup", Role.ANALYST))
    path = isolated_workspace.models / STATE_FILE
    stop, problems, published = threading.Event(), [], []

    def reader() -> None:
        while not stop.is_set():
            try:
                state = json.loads(path.read_text())
                assert state["current"] == state["history"][-1]
                assert state["current"]["run_id"] in (first.run_id, second.run_id)
            except Exception as exc:  # noqa: BLE001  (collected and asserted below)
                problems.append(repr(exc))

    def writer(name: str) -> None:
        for _ in range(15):
            current = current_publication(isolated_workspace)
            target = second.run_id if current.run_id == first.run_id else first.run_id
            try:
                published.append(publish(isolated_workspace, target, Actor(name, Role.ANALYST)))
            except PublishError:
                pass  # another writer published the same target first

    threads = [threading.Thread(target=reader)] + [threading.Thread(target=writer, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads[1:]:
        t.join()
    stop.set()
    threads[0].join()
    assert problems == []
    history = publication_history(isolated_workspace)
    assert len(history) == 1 + len(published) and len(published) > 10
    # each publication replaced exactly the one before it: no lost update
    assert all(later.replaced == earlier.run_id for earlier, later in zip(history, history[1:]))


def test_the_publish_check_refuses_to_compare_runs_tested_on_different_splits(isolated_workspace, config):
    first = train_runs(isolated_workspace, config, save_demo_version(isolated_workspace, config),
                       kinds=("tfidf_nb",))[0]
    assert "becomes the first published model" in compare_with_published(isolated_workspace, first).message
    publish(isolated_workspace, first.run_id, Actor("ana", Role.ANALYST))
    smaller = save_demo_version(isolated_workspace, config, name="sample", max_rows=200)
    other = train_runs(isolated_workspace, config, smaller, kinds=("tfidf_nb",))[0]
    check = compare_with_published(isolated_workspace, other)
    assert "different test splits" in check.message and not check.worse
    assert first.name in check.message and other.name in check.message
