"""The training worker: a separate process takes queued runs; cancel, restart, a killed worker and two workers
sharing one queue (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest

from core.accounts.audit import EventType
from core.training.jobs import RunQueue
from core.training.runs import RunRequest, RunState, create_run, list_runs, load_record, save_record
from core.platform.store import events
from core.training.worker import WORKER_STOPPED, Worker
from tests.conftest import ANALYST, PROJECT_ROOT, QueueWithWorker, save_demo_version, workspace_store
from tests.conftest import wait_until, wait_with_worker
from tests.test_training import tiny_config

FAST_WATCH = """
[worker]
heartbeat_s = 0.5
lease_s = 6.0
poll_s = 0.2
"""


def request(config, version, kind):
    return RunRequest(version.ref, kind, "quick", config.training.hyperparameters("quick"))


def worker_process(tmp_path) -> subprocess.Popen:
    """``python -m core worker`` as ``make run`` starts it (same workspace and settings, from the environment)."""
    log = open(tmp_path / "worker.log", "ab")
    return subprocess.Popen([sys.executable, "-m", "core", "worker"], cwd=PROJECT_ROOT, stdout=log, stderr=log,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_queued_runs_wait_for_a_worker_and_survive_a_restart(isolated_workspace, config):
    version = save_demo_version(isolated_workspace, config)
    queue = RunQueue(isolated_workspace, config)  # the app, with no worker yet
    ids = [queue.submit(request(config, version, "tfidf_nb"), ANALYST).run_id for _ in range(2)]
    time.sleep(1.0)
    assert [r.state for r in queue.active()] == [RunState.QUEUED] * 2 and queue.workers() == []
    queue.close()  # the app restarts: the queue is on disk, not in its memory
    assert [r.run_id for r in RunQueue(isolated_workspace, config).active()] == ids  # in queue order
    jobs = QueueWithWorker(isolated_workspace, config)
    finished = [jobs.wait(run_id, timeout=120) for run_id in ids]
    assert [r.state for r in finished] == [RunState.SUCCEEDED] * 2
    assert {r.owner for r in finished} == {jobs.worker.owner}
    assert [w.owner for w in jobs.workers()] == [jobs.worker.owner]
    jobs.close()
    assert jobs.workers() == []  # a stopped worker is no longer announced


@pytest.mark.slow
def test_a_worker_process_trains_what_the_app_queues_and_stops_when_cancelled(isolated_workspace, config_file,
                                                                              tiny_bert, tmp_path):
    # a long lease: on a busy machine (tests on every core) the niced worker's heartbeat can lag a short lease, and
    # the run would be taken for dead; this test is about cancelling, not about leases
    config = tiny_config(config_file, tiny_bert, epochs=50, patience=100,
                         extra=FAST_WATCH.replace("lease_s = 6.0", "lease_s = 60.0"))
    version = save_demo_version(isolated_workspace, config)
    worker = worker_process(tmp_path)
    try:
        queue = RunQueue(isolated_workspace, config)
        run_id = queue.submit(request(config, version, "transformer"), ANALYST).run_id
        # optimiser steps, not texts read by the linear probe before them (its "steps" count texts; a cancel then
        # could land just as it read the last one, and the run would look finished)
        training = lambda: (seen := queue.snapshot(run_id)).unit == "step" and seen.step >= 2  # noqa: E731
        assert wait_until(training), (tmp_path / "worker.log").read_text()
        own = os.getpriority(os.PRIO_PROCESS, 0)  # training yields the CPU to page serving
        assert os.getpriority(os.PRIO_PROCESS, worker.pid) == min(19, own + config.worker.nice) > own
        assert queue.cancel(run_id, ANALYST)
        seen = queue.snapshot(run_id)
        assert seen.state.finished or (seen.message, seen.cancelled_by) == ("cancelling…", "ana")  # at once
        record = queue.wait(run_id, timeout=60)
        assert record.state is RunState.CANCELLED and record.cancelled_by == "ana"
        assert record.step < record.total_steps and record.owner.split(":")[1] == str(worker.pid)
        assert not (isolated_workspace.runs / run_id / "checkpoints").exists()
        assert not queue.cancel(run_id, ANALYST)
        store = workspace_store(isolated_workspace)

        def cancellations() -> list:
            return [(e["event_type"], e["details"]["cancelled_by"]) for e in store.rows(events.select())
                    if e["event_type"] == EventType.TRAINING_CANCELLED.value]

        assert wait_until(cancellations, timeout=30)  # the worker logs how the run ended just after recording it
        assert cancellations() == [("training_cancelled", "ana")]
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0, (tmp_path / "worker.log").read_text()


@pytest.mark.slow
def test_a_killed_worker_s_run_is_interrupted_when_its_lease_runs_out_and_retried(isolated_workspace, config_file,
                                                                                  tiny_bert, tmp_path):
    config = tiny_config(config_file, tiny_bert, epochs=50, patience=100, extra=FAST_WATCH)
    version = save_demo_version(isolated_workspace, config)
    worker = worker_process(tmp_path)
    queue = RunQueue(isolated_workspace, config)
    run_id = queue.submit(request(config, version, "transformer"), ANALYST).run_id
    assert wait_until(lambda: queue.snapshot(run_id).step >= 2), (tmp_path / "worker.log").read_text()
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    assert queue.snapshot(run_id).state is RunState.RUNNING  # within its lease: nobody can tell yet
    jobs = QueueWithWorker(isolated_workspace, config)  # another worker (here, in this process) keeps watch
    assert wait_until(lambda: load_record(isolated_workspace, run_id).retried_as is not None, timeout=60)
    old = load_record(isolated_workspace, run_id)
    assert old.state is RunState.INTERRUPTED and "no sign of life" in old.message and old.retryable
    retry = load_record(isolated_workspace, old.retried_as)
    assert (retry.retry_of, retry.retries_used, retry.dataset_ref, retry.hyperparameters) == (
        run_id, 1, old.dataset_ref, old.hyperparameters)
    assert wait_until(lambda: queue.snapshot(retry.run_id).state is RunState.RUNNING, timeout=60)
    assert queue.snapshot(retry.run_id).owner == jobs.worker.owner
    assert jobs.worker.sweep().retried == {}  # retried once, by one worker
    assert queue.cancel(retry.run_id, ANALYST)
    assert queue.wait(retry.run_id, timeout=60).state is RunState.CANCELLED


@pytest.mark.slow
def test_stopping_a_worker_interrupts_its_run_and_the_next_worker_trains_it_again(isolated_workspace, config_file,
                                                                                  tiny_bert):
    config = tiny_config(config_file, tiny_bert, epochs=50, patience=100, extra=FAST_WATCH)
    version = save_demo_version(isolated_workspace, config)
    jobs = QueueWithWorker(isolated_workspace, config)
    run_id = jobs.submit(request(config, version, "transformer"), ANALYST).run_id
    assert wait_until(lambda: jobs.snapshot(run_id).step >= 2)
    jobs.close()  # make run stopped with Ctrl-C
    stopped = load_record(isolated_workspace, run_id)
    assert stopped.state is RunState.INTERRUPTED and stopped.message == WORKER_STOPPED
    again = load_record(isolated_workspace, stopped.retried_as)
    assert again.state is RunState.QUEUED and again.retry_of == run_id and again.retries_used == 0
    later = QueueWithWorker(isolated_workspace, config)  # make run again
    assert wait_until(lambda: later.snapshot(again.run_id).state is RunState.RUNNING, timeout=60)
    assert later.cancel(again.run_id, ANALYST)
    assert later.wait(again.run_id, timeout=60).state is RunState.CANCELLED


def test_a_queued_run_the_queue_lost_is_queued_again(isolated_workspace, config):
    """A worker killed between taking a run off the queue and starting it took the only copy with it."""
    version = save_demo_version(isolated_workspace, config)
    lost = create_run(isolated_workspace, request(config, version, "tfidf_nb"), config, ANALYST)  # never queued
    lost.created_at = (datetime.now(timezone.utc) - timedelta(minutes=5)).isoformat(timespec="seconds")
    save_record(isolated_workspace, lost)
    worker = Worker(config, isolated_workspace)
    assert worker.sweep().requeued == [lost.run_id]
    assert worker.sweep().requeued == []  # now it is on the queue
    jobs = QueueWithWorker(isolated_workspace, config)
    assert jobs.wait(lost.run_id, timeout=120).state is RunState.SUCCEEDED
    worker.huey.storage.close()


def two_workers_train(isolated_workspace, config, store=None) -> list:
    """Four runs queued from one app, trained by two workers on one queue; the finished records."""
    version = save_demo_version(isolated_workspace, config)
    queue = RunQueue(isolated_workspace, config)
    ids = [queue.submit(request(config, version, "tfidf_nb"), ANALYST).run_id for _ in range(4)]
    first, second = QueueWithWorker(isolated_workspace, config, store), QueueWithWorker(isolated_workspace, config, store)
    records = [queue.wait(run_id, timeout=180) for run_id in ids]
    assert {w.owner for w in queue.workers()} == {first.worker.owner, second.worker.owner}
    assert sum(first.worker.finished.values()) + sum(second.worker.finished.values()) == 4  # each run once
    return records


def test_two_workers_share_one_queue_and_each_run_trains_once(isolated_workspace, config):
    records = two_workers_train(isolated_workspace, config)
    assert [r.state for r in records] == [RunState.SUCCEEDED] * 4
    assert len(list_runs(isolated_workspace)) == 4


@pytest.mark.slow  # a PostgreSQL server
def test_on_postgresql_the_queue_is_in_the_database(isolated_workspace, config, postgres_admin_url):
    """Workers on several machines share the PostgreSQL queue (nothing on the workspace's disk)."""
    from sqlalchemy import create_engine, text

    from bench.postgres_server import fresh_database
    from core.platform.store import Store

    config.storage.database_url = fresh_database(postgres_admin_url)
    store = Store(config.storage.database_url)
    records = two_workers_train(isolated_workspace, config, store)
    assert [r.state for r in records] == [RunState.SUCCEEDED] * 4
    assert not (isolated_workspace.root / "queue.db").exists()
    engine = create_engine(config.storage.database_url)
    with engine.connect() as connection:
        assert connection.execute(text("select count(*) from huey_task")).scalar_one() == 0  # all taken
    engine.dispose()
    finished = [e for e in store.rows(events.select())
                if e["event_type"] == EventType.TRAINING_FINISHED.value]
    assert sorted(e["details"]["run"] for e in finished) == sorted(r.run_id for r in records)


@pytest.mark.slow
def test_a_run_trains_with_the_settings_it_was_queued_with_not_the_workers(isolated_workspace, config_file,
                                                                           tiny_bert, caplog):
    """Configuration A queues the run; the worker starts under B (another model, max length and seed). The run
    trains A's model, and says so; a worker that used B would fail (B's model does not exist)."""
    from huggingface_hub import ModelCard

    from core.training.execution import run_config
    from core.training.finished import finished_run

    a = tiny_config(config_file, tiny_bert, epochs=1, extra="[training]\nseed = 7\n")
    version = save_demo_version(isolated_workspace, a)
    queue = RunQueue(isolated_workspace, a)  # the app, under A
    run_id = queue.submit(request(a, version, "transformer"), ANALYST).run_id
    b = config_file('[model]\nname = "/no/such/model"\nmax_length = 16\n[training]\nseed = 99\n')
    assert (b.model.name, b.model.max_length, b.training.seed) == ("/no/such/model", 16, 99)
    caplog.set_level("INFO", logger="core.training.execution")
    record = wait_with_worker(queue, run_id, b, isolated_workspace, timeout=300)
    assert record.state is RunState.SUCCEEDED, record.error
    trained = run_config(record, b)
    assert (trained.model.name, trained.model.max_length, trained.training.seed) == (str(tiny_bert), 64, 7)
    assert record.model["base_model"] == str(tiny_bert) and record.model["max_length"] == 64
    _, folder = finished_run(isolated_workspace, run_id)
    card = ModelCard.load(folder / "README.md").data
    assert card.base_model == str(tiny_bert)
    assert card.feedback_studio["base_model_fingerprint"] == record.settings["model_fingerprint"] is not None
    assert f"run {run_id} trains with its own settings (model {tiny_bert}, max length 64, seed 7)" in caplog.text


@pytest.mark.slow
def test_a_run_whose_pretrained_model_changed_since_it_was_queued_is_refused_in_words(isolated_workspace,
                                                                                     config_file, tiny_bert, tmp_path):
    """The record names the pre-trained model's files by a fingerprint; a model folder replaced between queueing
    and training (another version of the package, a retrained folder) would train something the record does
    not describe."""
    import shutil

    model = shutil.copytree(tiny_bert, tmp_path / "model-copy")
    a = tiny_config(config_file, model, epochs=1)
    version = save_demo_version(isolated_workspace, a)
    queue = RunQueue(isolated_workspace, a)
    queued = queue.submit(request(a, version, "transformer"), ANALYST)
    baseline = queue.submit(request(a, version, "tfidf_nb"), ANALYST)  # reads no pre-trained model
    assert queued.settings["model_fingerprint"] and baseline.settings["model_fingerprint"] is None
    (model / "config.json").write_text((model / "config.json").read_text() + "\n")
    failed = wait_with_worker(queue, queued.run_id, a, isolated_workspace, timeout=300)
    assert failed.state is RunState.FAILED
    assert f"the pre-trained model {model} changed since the run was queued" in failed.error
    assert not load_record(isolated_workspace, baseline.run_id).error  # only the run reading the model is refused



@pytest.mark.slow
def test_an_idle_worker_measures_the_speed_the_train_page_asks_for(isolated_workspace, config_file, tiny_bert):
    """The transformer's time estimate needs this machine's training speed: the page asks, a worker answers."""
    from core.services import Caller, Studio
    from core.services.runs import transformer_plan

    config = tiny_config(config_file, tiny_bert, epochs=1)
    version = save_demo_version(isolated_workspace, config)
    studio = Studio(config)
    analyst = Caller(ANALYST, "s-ana")
    try:
        assert transformer_plan(studio, analyst, version, "quick", None).speed is None  # nobody to measure yet
        runner = QueueWithWorker(isolated_workspace, config)
        try:
            assert wait_until(lambda: transformer_plan(studio, analyst, version, "quick", None).speed is not None,
                              timeout=120)
        finally:
            runner.close()
        recipe = transformer_plan(studio, analyst, version, "quick", None)
        assert recipe.speed > 0 and recipe.estimate_s is not None
    finally:
        studio.close()
