"""Queued runs trained by a worker: progress, cancel, failure, queueing, recovery after restart."""

from __future__ import annotations


import pytest

from core.training.runs import RunRequest, RunState, load_record, save_record
from tests.conftest import ANALYST, QueueWithWorker, save_demo_version, wait_until, wait_with_worker
from tests.test_training import tiny_config


def request(config, version, kind, preset="quick"):
    return RunRequest(version.ref, kind, preset, config.training.hyperparameters(preset))


def minutes_ago(minutes: float) -> str:
    from datetime import datetime, timedelta, timezone

    return (datetime.now(timezone.utc) - timedelta(minutes=minutes)).isoformat(timespec="seconds")


def running_elsewhere(workspace, config, version, *beats: str) -> list:
    """Runs whose records say a worker on another host trains them, one per last heartbeat time."""
    from core.training.runs import create_run

    records = []
    for beat in beats:
        record = create_run(workspace, request(config, version, "tfidf_nb"), config, ANALYST)
        record.state, record.owner, record.started_at, record.heartbeat_at = (
            RunState.RUNNING, "another-host:4242:abcd", minutes_ago(10), beat)
        save_record(workspace, record)
        records.append(record)
    return records


def test_progress_reads_as_texts_while_texts_are_read_and_as_steps_in_training(isolated_workspace, config):
    from core.models.classifiers import Progress
    from core.presentation.display import progress_count
    from core.training.runs import RunHandle, create_run
    from core.training.execution import ProgressTracker

    version = save_demo_version(isolated_workspace, config)
    handle = RunHandle(isolated_workspace, create_run(isolated_workspace, request(config, version, "transformer"),
                                                      config, ANALYST))
    handle.start("host:1")
    track = ProgressTracker(handle)
    track(Progress(3000, 9000, message="linear probe: reading the training texts", unit="text"))
    handle.report(persist=True)
    reading = load_record(isolated_workspace, handle.run_id)
    assert progress_count(reading.step, reading.total_steps, reading.unit) == "3,000 of 9,000 texts"
    track(Progress(12, 1500, epoch=0.1))
    handle.report(persist=True)
    training = load_record(isolated_workspace, handle.run_id)
    assert progress_count(training.step, training.total_steps, training.unit) == "step 12/1,500"


@pytest.mark.slow
def test_progress_is_monotonic_and_reaches_the_total(isolated_workspace, config_file, tiny_bert):
    """As the app sees it, from the run's folder (the worker writes progress there about once a second)."""
    config = tiny_config(config_file, tiny_bert, epochs=8, patience=100)
    version = save_demo_version(isolated_workspace, config)
    runner = QueueWithWorker(isolated_workspace, config)
    run_id = runner.submit(request(config, version, "transformer"), ANALYST).run_id
    seen = []

    def finished() -> bool:
        snapshot = runner.snapshot(run_id)
        seen.append((snapshot.step, snapshot.total_steps, snapshot.message))
        return snapshot.state.finished

    assert wait_until(finished, timeout=300), f"not finished in 5 minutes; last seen {seen[-1]}"
    snapshot = runner.snapshot(run_id)
    assert snapshot.state is RunState.SUCCEEDED, snapshot.error
    # Each phase counts its own steps (texts read for the probe, then training steps), never backwards.
    steps = [s for s, _, message in seen if message == "training"]
    assert steps == sorted(steps) and len(set(steps)) > 3
    assert seen[-1][0] == seen[-1][1] > 0
    on_disk = load_record(isolated_workspace, run_id)  # what another tab or user sees
    assert on_disk.state is RunState.SUCCEEDED and on_disk.step == on_disk.total_steps


def test_cancel_stops_a_running_job_at_the_next_step(isolated_workspace, config_file, tiny_bert):
    config = tiny_config(config_file, tiny_bert, epochs=50, patience=100)
    version = save_demo_version(isolated_workspace, config)
    runner = QueueWithWorker(isolated_workspace, config)
    run_id = runner.submit(request(config, version, "transformer"), ANALYST).run_id
    assert wait_until(lambda: runner.snapshot(run_id).step >= 2)
    assert runner.cancel(run_id, ANALYST)
    at_once = runner.snapshot(run_id)  # it says so at once, unless the worker already stopped it
    assert at_once.state.finished or at_once.message == "cancelling…", at_once.message
    record = runner.wait(run_id, timeout=60)
    assert record.state is RunState.CANCELLED
    assert record.step < record.total_steps
    assert not (isolated_workspace.runs / run_id / "checkpoints").exists()
    assert not (isolated_workspace.runs / run_id / "model").exists()
    assert load_record(isolated_workspace, run_id).state is RunState.CANCELLED
    assert not runner.cancel(run_id, ANALYST)  # already finished


def test_a_failing_job_records_a_readable_error(isolated_workspace, config_file, tmp_path):
    config = config_file(f'[model]\nname = "{tmp_path / "no-such-model"}"\n')
    version = save_demo_version(isolated_workspace, config)
    runner = QueueWithWorker(isolated_workspace, config)
    record = runner.wait(runner.submit(request(config, version, "transformer"), ANALYST).run_id, timeout=120)
    assert record.state is RunState.FAILED
    assert "no-such-model" in record.error
    assert load_record(isolated_workspace, record.run_id).error == record.error


def test_a_run_that_fails_after_training_keeps_no_checkpoints(isolated_workspace, config_file, tiny_bert):
    """Checkpoints (hundreds of MB for a real model) of a failed run were kept until the next worker started;
    nothing can resume from them."""
    from core.training.jobs import RunQueue

    config = tiny_config(config_file, tiny_bert, epochs=1)
    version = save_demo_version(isolated_workspace, config)
    queue = RunQueue(isolated_workspace, config)
    run_id = queue.submit(request(config, version, "transformer"), ANALYST).run_id
    (isolated_workspace.runs / run_id / "model").write_text("in the way")  # saving the trained model fails
    record = wait_with_worker(queue, run_id, config, isolated_workspace, timeout=180)
    assert record.state is RunState.FAILED and record.step > 0, record.error  # it failed after training
    assert not (isolated_workspace.runs / run_id / "checkpoints").exists()


@pytest.mark.slow
def test_a_second_job_queues_behind_the_first(isolated_workspace, config_file, tiny_bert):
    config = tiny_config(config_file, tiny_bert, epochs=2)
    version = save_demo_version(isolated_workspace, config)
    runner = QueueWithWorker(isolated_workspace, config)
    first = runner.submit(request(config, version, "transformer"), ANALYST).run_id
    second = runner.submit(request(config, version, "tfidf_nb"), ANALYST).run_id
    assert wait_until(lambda: runner.snapshot(first).state is RunState.RUNNING)
    assert runner.snapshot(second).state is RunState.QUEUED
    assert [r.run_id for r in runner.active()] == [first, second]
    done_second = runner.wait(second, timeout=300)
    done_first = runner.snapshot(first)
    assert done_first.state is done_second.state is RunState.SUCCEEDED
    assert done_first.finished_at <= done_second.started_at  # one at a time, in order


@pytest.mark.slow
def test_cancelling_a_queued_job_never_starts_it(isolated_workspace, config_file, tiny_bert):
    config = tiny_config(config_file, tiny_bert, epochs=2)
    version = save_demo_version(isolated_workspace, config)
    runner = QueueWithWorker(isolated_workspace, config)
    first = runner.submit(request(config, version, "transformer"), ANALYST).run_id
    second = runner.submit(request(config, version, "tfidf_nb"), ANALYST).run_id
    assert runner.cancel(second, ANALYST)
    assert runner.wait(second, timeout=5).state is RunState.CANCELLED
    assert runner.wait(first, timeout=300).state is RunState.SUCCEEDED
    assert load_record(isolated_workspace, second).started_at is None


def test_a_restart_leaves_runs_of_live_workers_and_queued_runs_alone_and_cleans_up_the_dead(isolated_workspace,
                                                                                            config):
    """Liveness is the heartbeat lease, never a host name: a running run that beat a moment ago on another host
    keeps running, a queued one stays queued for the next worker, a silent one is interrupted (and its
    checkpoints removed by the next worker to start)."""
    from core.training.runs import list_runs

    version = save_demo_version(isolated_workspace, config)
    live, dead = running_elsewhere(isolated_workspace, config, version, minutes_ago(0), minutes_ago(10))
    for record in (live, dead):
        (isolated_workspace.runs / record.run_id / "checkpoints" / "checkpoint-1").mkdir(parents=True)
    queued = QueueWithWorker(isolated_workspace, config).queue.submit(request(config, version, "tfidf_nb"), ANALYST)
    assert load_record(isolated_workspace, live.run_id).state is RunState.RUNNING
    assert (isolated_workspace.runs / live.run_id / "checkpoints").exists()  # it may still need them
    states = {r.run_id: r.state for r in list_runs(isolated_workspace)}  # what any page lists
    assert states[dead.run_id] is RunState.INTERRUPTED and states[live.run_id] is RunState.RUNNING
    runner = QueueWithWorker(isolated_workspace, config)  # the next worker to start cleans up
    assert not (isolated_workspace.runs / dead.run_id / "checkpoints").exists()
    assert runner.wait(queued.run_id, timeout=120).state is RunState.SUCCEEDED


def test_the_eta_is_paced_by_the_phase_under_way_not_the_time_before_it(isolated_workspace, config):
    """Minutes of preparation made the first ETA hours long (3 h 13 min → 1 h 58 min → 13 min)."""
    from core.models.classifiers import Progress
    from core.training.runs import RunHandle, create_run
    from core.training.execution import ProgressTracker

    version = save_demo_version(isolated_workspace, config)
    record = create_run(isolated_workspace, request(config, version, "tfidf_nb"), config, ANALYST)
    handle = RunHandle(isolated_workspace, record)
    now = [0.0]
    track = ProgressTracker(handle, clock=lambda: now[0])
    for done in range(0, 501, 100):  # reading 500 texts for the probe: 10 s
        now[0] += 2.0
        track(Progress(done, 500, message="linear probe: reading the training texts"))
    assert handle.snapshot().eta_s == 0.0 and handle.snapshot().message.startswith("linear probe")
    now[0] = 100.0  # the model loaded, tokenised…: 90 s more without reports
    track(Progress(1, 10, epoch=0.1))
    assert handle.snapshot().eta_s is None  # one report: no pace yet
    for step in range(2, 5):
        now[0] += 1.0
        track(Progress(step, 10, epoch=step / 10))
        assert handle.snapshot().eta_s == 10 - step  # one second a step, whatever came before
    assert handle.snapshot().elapsed_s == 103.0 and handle.snapshot().message == "training"


def test_a_run_whose_process_died_is_shown_interrupted_wherever_runs_are_listed(isolated_workspace, config):
    """A command-line run killed while the app was up stayed "running"; Home showed such ghosts as training.
    Reading shows it interrupted without writing (listing used to settle it on disk); a worker's sweep records it."""
    from core.serving.overview import summarise_workspace
    from core.training.runs import RECORD_FILE, list_runs, run_folder, settle_dead_runs

    version = save_demo_version(isolated_workspace, config)
    finished = QueueWithWorker(isolated_workspace, config)
    done = finished.wait(finished.submit(request(config, version, "tfidf_nb"), ANALYST).run_id, timeout=120)
    assert done.heartbeat_at is not None  # a training run beats while it runs
    ghost, alive = running_elsewhere(isolated_workspace, config, version, minutes_ago(10), minutes_ago(0))
    stored = (run_folder(isolated_workspace, ghost.run_id) / RECORD_FILE).read_bytes()
    states = {r.run_id: r for r in list_runs(isolated_workspace)}
    assert states[ghost.run_id].state is RunState.INTERRUPTED and "no sign of life" in states[ghost.run_id].message
    assert states[alive.run_id].state is RunState.RUNNING  # it beat a moment ago: still training elsewhere
    assert [r.run_id for r in summarise_workspace(isolated_workspace).active_runs] == [alive.run_id]  # Home
    assert finished.snapshot(ghost.run_id).state is RunState.INTERRUPTED  # the Train page's follow
    assert (run_folder(isolated_workspace, ghost.run_id) / RECORD_FILE).read_bytes() == stored  # nothing written
    swept = {r.run_id: r for r in settle_dead_runs(isolated_workspace)}
    on_disk = load_record(isolated_workspace, ghost.run_id)
    assert on_disk.state is RunState.INTERRUPTED and on_disk.retryable and swept[ghost.run_id] == on_disk
    assert load_record(isolated_workspace, alive.run_id).state is RunState.RUNNING


def test_a_run_record_changes_state_only_along_its_life_and_refuses_unknown_fields(isolated_workspace, config):
    """The record was a mutable bag: any module could set any state, and a misspelt key vanished on save."""
    from core.training.runs import IllegalTransition, RunError, RunHandle, create_run, interrupt_record

    version = save_demo_version(isolated_workspace, config)
    handle = RunHandle(isolated_workspace, create_run(isolated_workspace, request(config, version, "tfidf_nb"),
                                                      config, ANALYST))
    with pytest.raises(IllegalTransition, match="is queued; it cannot become succeeded"):
        handle.succeed()
    handle.start("host:1")
    with pytest.raises(RunError, match="a run has no field totl_steps"):
        handle.report(totl_steps=3)
    with pytest.raises(RunError, match="cannot change dataset_ref, state"):
        handle.report(state=RunState.QUEUED, dataset_ref="other/v1")
    handle.report(step=2, total_steps=4, message="training")
    handle.succeed(test_metrics={"accuracy": 1.0})
    for change in (lambda: handle.start("host:2"), lambda: handle.fail("late"), lambda: handle.interrupt("gone")):
        with pytest.raises(IllegalTransition, match="is succeeded; it cannot become"):
            change()
    stored = load_record(isolated_workspace, handle.run_id)
    assert stored.state is RunState.SUCCEEDED and stored.finished_at and stored.test_metrics == {"accuracy": 1.0}
    with pytest.raises(IllegalTransition):
        interrupt_record(isolated_workspace, stored, "a restart thought it dead")
    assert load_record(isolated_workspace, handle.run_id).state is RunState.SUCCEEDED


def test_progress_is_written_apart_from_the_spec_and_result(isolated_workspace, config):
    """Progress is written up to once a second for minutes: it goes to progress.json, and run.json (spec,
    state, result) changes only when the state or a result does. The history is appended, a line per point: it
    was rewritten whole with every report (quadratic in the run's length)."""
    import json

    from core.training.runs import HISTORY_FILE, PROGRESS_FILE, RECORD_FILE, RunHandle, create_run, run_folder

    version = save_demo_version(isolated_workspace, config)
    handle = RunHandle(isolated_workspace, create_run(isolated_workspace, request(config, version, "tfidf_nb"),
                                                      config, ANALYST))
    folder = run_folder(isolated_workspace, handle.run_id)
    handle.start("host:1")
    written = (folder / RECORD_FILE).stat().st_mtime_ns, (folder / RECORD_FILE).read_bytes()
    for step in range(1, 4):
        handle.report(step=step, total_steps=3, loss=1.0 / step, history={"step": step}, persist=True)
    assert ((folder / RECORD_FILE).stat().st_mtime_ns, (folder / RECORD_FILE).read_bytes()) == written
    progress = json.loads((folder / PROGRESS_FILE).read_text())
    assert progress["step"] == 3 and "history" not in progress and "dataset_ref" not in progress
    assert [json.loads(line) for line in (folder / HISTORY_FILE).read_text().splitlines()] == [
        {"step": 1}, {"step": 2}, {"step": 3}]
    with (folder / HISTORY_FILE).open("a") as half_written:  # a reader meeting a line being written skips it
        half_written.write('{"step": 4, "lo')
    assert load_record(isolated_workspace, handle.run_id).history == [{"step": 1}, {"step": 2}, {"step": 3}]
    assert "step" not in json.loads((folder / RECORD_FILE).read_text())
    on_disk = load_record(isolated_workspace, handle.run_id)
    assert (on_disk.state, on_disk.step, on_disk.loss) == (RunState.RUNNING, 3, 1.0 / 3)
    handle.report(train_examples=40)  # a result field, inside the throttle: not written yet …
    handle.report(step=3, persist=True)  # … but with the next write, though that one is progress only
    assert load_record(isolated_workspace, handle.run_id).train_examples == 40


def test_a_run_saved_before_the_history_file_keeps_its_history_when_saved_again(isolated_workspace, config):
    """Runs written before the history file held their history in progress.json; saving such a run again (a
    sweep interrupting it, say) moves the history to the file instead of dropping it."""
    import json

    from core.training.runs import HISTORY_FILE, PROGRESS_FILE, create_run, interrupt_record, run_folder

    version = save_demo_version(isolated_workspace, config)
    record = create_run(isolated_workspace, request(config, version, "tfidf_nb"), config, ANALYST)
    folder = run_folder(isolated_workspace, record.run_id)
    legacy = json.loads((folder / PROGRESS_FILE).read_text())
    (folder / PROGRESS_FILE).write_text(json.dumps({**legacy, "history": [{"epoch": 1.0, "loss": 0.5}]}))
    assert load_record(isolated_workspace, record.run_id).history == [{"epoch": 1.0, "loss": 0.5}]
    interrupt_record(isolated_workspace, load_record(isolated_workspace, record.run_id), "test")
    assert (folder / HISTORY_FILE).exists() and "history" not in json.loads((folder / PROGRESS_FILE).read_text())
    assert load_record(isolated_workspace, record.run_id).history == [{"epoch": 1.0, "loss": 0.5}]


def test_a_run_lock_nobody_holds_is_forgotten(isolated_workspace, config):
    """The process's table of run locks only ever grew (one entry per run ever locked)."""
    from core.training import runs

    version = save_demo_version(isolated_workspace, config)
    record = runs.create_run(isolated_workspace, request(config, version, "tfidf_nb"), config, ANALYST)
    with runs.run_lock(isolated_workspace, record.run_id):
        with runs.run_lock(isolated_workspace, record.run_id):  # re-entrant
            assert len(runs._LOCKS_HELD) == 1
        assert len(runs._LOCKS_HELD) == 1
    assert runs._LOCKS_HELD == {}
