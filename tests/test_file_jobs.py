"""A big file classified as a job: read as a stream into pieces, each piece a task scored by a real worker and
written to disk as it goes, the result put together in input order; resumed after a worker is killed with no row
scored twice or lost; cancelled; removed after the time it is kept; bad input said in words."""

from __future__ import annotations

import csv
import io
import json
import os
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from core.data.ingest import DEMO_DATASET, read_feedback_file
from core.models.predict import Predictor
from core.training import file_jobs
from core.training.file_jobs import FileJob, JobState
from core.training.finished import load_run_model
from tests.conftest import ANALYST, QueueWithWorker, save_demo_version, train_runs

DEMO = [json.loads(line) for line in DEMO_DATASET.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def trained(isolated_workspace, config_file):
    """A TF-IDF run on the demo set, and settings that cut files into pieces of 250 rows."""
    config = config_file("[classify]\njob_chunk_rows = 250\n")
    (run,) = train_runs(isolated_workspace, config, save_demo_version(isolated_workspace, config),
                        kinds=("tfidf_logreg",))
    return config, run


def comments_csv(path, rows: int):
    """``rows`` comments with an id, a formula-like cell and (every 97th) an empty text."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "comment", "channel"])
        for i in range(rows):
            writer.writerow([f"r{i}", "" if i % 97 == 5 else DEMO[i % len(DEMO)]["text"], "=cmd()" if i == 3 else "web"])
    return path


def wait_for(workspace, job_id: str, timeout: float = 120.0) -> FileJob:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = file_jobs.load_job(workspace, job_id)
        if job.state.finished:
            return job
        time.sleep(0.2)
    raise AssertionError(f"{job_id} still {file_jobs.load_job(workspace, job_id).state}")


def test_a_file_is_read_in_pieces_classified_by_two_workers_and_put_together_in_order(trained, isolated_workspace,
                                                                                        tmp_path):
    config, run = trained
    source = comments_csv(tmp_path / "comments.csv", 1_234)
    first, second = QueueWithWorker(isolated_workspace, config), QueueWithWorker(isolated_workspace, config)
    try:
        job = first.submit_file(source, "comments.csv", "comment", run, "fp32", 0.6, ANALYST)
        assert file_jobs.load_job(isolated_workspace, job.job_id).state is JobState.QUEUED
        done = wait_for(isolated_workspace, job.job_id)
    finally:
        first.close(), second.close()
    assert done.state is JobState.DONE, done.error
    assert (done.rows, done.pieces) == (1_234, 5)
    result = list(csv.DictReader(io.StringIO(file_jobs.result_path(isolated_workspace, done).read_text("utf-8"))))
    assert [row["id"] for row in result] == [f"r{i}" for i in range(1_234)]  # every row once, in input order
    assert [int(row["line"]) for row in result[:3]] == [2, 3, 4]  # the file's own line numbers
    assert result[3]["channel"] == "'=cmd()"  # a spreadsheet will not run it
    assert result[5]["status"] == "empty" and result[5]["predicted_label"] == ""
    model, _ = load_run_model(isolated_workspace, run.run_id, config)
    expected = Predictor.for_model(model, 0.6).predict([r["comment"] for r in result[:40]])
    assert [row["predicted_label"] for row in result[:40]] == [p.label or "" for p in expected]
    assert done.summary["rows"] == 1_234 and done.summary["not_scored"] == len(range(5, 1_234, 97))
    assert sum(done.summary["per_label"].values()) == done.summary["scored"]
    assert not (file_jobs.job_folder(isolated_workspace, job.job_id) / file_jobs.PIECES).exists()  # only the result


def test_a_killed_worker_s_pieces_are_queued_again_and_no_row_is_scored_twice(trained, isolated_workspace, tmp_path):
    config, run = trained
    source = comments_csv(tmp_path / "comments.csv", 1_000)
    job = file_jobs.create_job(isolated_workspace, source, "comments.csv", "comment", run.run_id, run.name, "fp32",
                               0.6, ANALYST)
    assert file_jobs.orphans(isolated_workspace, {(job.job_id, None)}, lease_s=60) == []  # its reading is queued
    job = file_jobs.prepare_job(isolated_workspace, job.job_id, config, threading.Event())
    assert (job.rows, job.pieces, job.state) == (1_000, 4, JobState.RUNNING)
    model, _ = load_run_model(isolated_workspace, run.run_id, config)
    predictor = Predictor.for_model(model, 0.6)
    for piece in (0, 2):
        file_jobs.classify_piece(isolated_workspace, job.job_id, piece, lambda _: predictor, "worker-a")
    folder = file_jobs.job_folder(isolated_workspace, job.job_id)
    stale = folder / file_jobs.PARTS / f"00001{file_jobs.WORKING}"  # worker-b was killed scoring piece 1
    stale.write_text("worker-b")
    os.utime(stale, (time.time() - 600, time.time() - 600))
    busy = folder / file_jobs.PARTS / f"00003{file_jobs.WORKING}"  # worker-c is scoring piece 3 now
    busy.write_text("worker-c")
    assert file_jobs.orphans(isolated_workspace, set(), lease_s=60) == [(job.job_id, 1)]
    written = (folder / file_jobs.PARTS / "00000.csv").stat().st_mtime_ns
    file_jobs.classify_piece(isolated_workspace, job.job_id, 0, lambda _: predictor, "worker-d")  # queued twice
    assert (folder / file_jobs.PARTS / "00000.csv").stat().st_mtime_ns == written  # a scored piece is left as it is
    for piece in (1, 3):
        job = file_jobs.classify_piece(isolated_workspace, job.job_id, piece, lambda _: predictor, "worker-d")
    assert job.state is JobState.DONE
    ids = [row["id"] for row in csv.DictReader(file_jobs.result_path(isolated_workspace, job).open(encoding="utf-8"))]
    assert ids == [f"r{i}" for i in range(1_000)]


def test_a_cancelled_job_stops_and_finished_jobs_are_removed_after_the_time_kept(trained, isolated_workspace,
                                                                                 tmp_path):
    config, run = trained
    job = file_jobs.create_job(isolated_workspace, comments_csv(tmp_path / "c.csv", 600), "c.csv", "comment",
                               run.run_id, run.name, "fp32", 0.6, ANALYST)
    job = file_jobs.prepare_job(isolated_workspace, job.job_id, config, threading.Event())
    cancelled = file_jobs.request_cancel(isolated_workspace, job.job_id, ANALYST)
    assert cancelled.state is JobState.CANCELLED and cancelled.cancelled_by == ANALYST.username
    after = file_jobs.classify_piece(isolated_workspace, job.job_id, 0, lambda _: pytest.fail("scored"), "w")
    assert after.state is JobState.CANCELLED and file_jobs.parts_done(isolated_workspace, after) == []
    assert file_jobs.orphans(isolated_workspace, set(), lease_s=0) == []
    assert file_jobs.remove_expired(isolated_workspace, 72) == []
    later = datetime.now(timezone.utc) + timedelta(hours=73)
    assert file_jobs.remove_expired(isolated_workspace, 72, now=later) == [job.job_id]
    with pytest.raises(file_jobs.FileJobError, match="removed after a while"):
        file_jobs.load_job(isolated_workspace, job.job_id)


def test_a_missing_text_field_fails_in_words_and_json_lines_keep_their_own_fields(trained, isolated_workspace,
                                                                                  tmp_path):
    config, run = trained
    source = comments_csv(tmp_path / "c.csv", 10)
    job = file_jobs.create_job(isolated_workspace, source, "c.csv", "text", run.run_id, run.name, "fp32", 0.6,
                               ANALYST)
    failed = file_jobs.prepare_job(isolated_workspace, job.job_id, config, threading.Event())
    assert failed.state is JobState.FAILED
    assert failed.error == "c.csv: no field 'text' (its fields: id, comment, channel); pick the field that holds the texts"

    lines = [json.dumps({"text": row["text"], "meta": {"n": i}}) for i, row in enumerate(DEMO[:300])]
    lines.insert(7, "{not json")
    source = tmp_path / "rows.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    job = file_jobs.create_job(isolated_workspace, source, "rows.jsonl", "text", run.run_id, run.name, "fp32", 0.6,
                               ANALYST)
    job = file_jobs.prepare_job(isolated_workspace, job.job_id, config, threading.Event())
    assert (job.rows, job.skipped_lines) == (300, 1) and job.problems[0].startswith("line 8: not valid JSON")
    model, _ = load_run_model(isolated_workspace, run.run_id, config)
    for piece in range(job.pieces):
        job = file_jobs.classify_piece(isolated_workspace, job.job_id, piece,
                                       lambda _: Predictor.for_model(model, 0.6), "w")
    rows = [json.loads(line) for line in file_jobs.result_path(isolated_workspace, job).read_text("utf-8").splitlines()]
    assert job.result_name == "rows-classified.jsonl" and len(rows) == 300
    assert rows[299]["meta"] == {"n": 299} and rows[299]["line"] == 301 and rows[299]["predicted_label"] in run.labels


def test_a_file_read_with_spill_is_handed_over_a_slice_at_a_time(write_file):
    path = write_file("c.csv", "text,label\n" + "".join(f"t{i},a\n" for i in range(7)))
    slices = []
    table = read_feedback_file(path, 10_000, spill=lambda lines, rows: slices.append((lines, rows)), spill_every=3)
    assert table.count == 7 and table.records == []
    assert [len(rows) for _, rows in slices] == [3, 3, 1] and slices[2] == ([8], [{"text": "t6", "label": "a"}])


def test_the_classify_page_follows_files_in_the_background_cancels_one_and_offers_the_result(
        trained, isolated_workspace, tmp_path):
    from core.serving.publishing import publish
    from core.services.file_jobs import classify_file_later
    from core.services.studio import Caller, Studio
    from tests.test_pages import open_page, texts

    config, run = trained
    publish(isolated_workspace, run.run_id, ANALYST)
    studio = Studio(config)
    runner = QueueWithWorker(isolated_workspace, config)
    try:
        done = classify_file_later(studio, Caller(ANALYST), comments_csv(tmp_path / "big.csv", 1_100).read_bytes(),
                                   "big.csv", "comment")
        assert wait_for(isolated_workspace, done.job_id).state is JobState.DONE
    finally:
        runner.close()
    app = open_page("pages/views/classify.py")
    upload = comments_csv(tmp_path / "more.csv", 1_500).read_bytes()
    app.file_uploader(key="classify_file").set_value(("more.csv", upload, "text/csv")).run()
    assert "more.csv has more than 1,000 rows, so it is classified in the background" in texts(app)
    field = next(box for box in app.selectbox if box.key and box.key.startswith("job_field:"))
    assert field.value == "comment"  # guessed from the first rows (the rest is not read in the page)
    app.slider(key=f"threshold:{run.run_id}").set_value(0.7).run()
    app.button(key="classify_file_job").click().run()
    assert not app.exception, app.exception
    (waiting,) = [job for job in file_jobs.list_jobs(isolated_workspace) if job.file_name == "more.csv"]
    assert (waiting.threshold, waiting.run_id, waiting.state) == (0.7, run.run_id, JobState.QUEUED)
    assert f"Queued: {waiting.name}. Its progress shows below." in texts(app) and waiting.name.startswith("more.csv, sent ")
    shown = texts(app)
    assert "Files classified in the background" in shown
    assert f"**{waiting.name}**" in shown and f"**{done.name}**" in shown
    assert f"Classified by {run.name}" in shown
    assert "Done: 1,088 rows classified" in shown and "12 not classified (empty or not text)" in shown
    assert any(button.label.replace("\\", "") == "Download big-classified.csv" for button in app.get("download_button")), \
        [b.label for b in app.get("download_button")]
    app.button(key=f"cancel_job:{waiting.job_id}").click().run()
    assert file_jobs.load_job(isolated_workspace, waiting.job_id).state is JobState.CANCELLED
    assert "Cancelled (by ana)." in texts(app), texts(app)

    other = open_page("pages/views/classify.py", as_user="uma", role="user")  # another user sees none of them
    assert "Files classified in the background" not in texts(other)


def test_workers_on_one_machine_share_its_cores_when_scoring(isolated_workspace, config):
    from core.platform.hardware import configure_cpu_threads, usable_cores
    from core.platform.workspace import write_json_atomic
    from core.training.jobs import announce, presence_file
    from core.training.runs import now_iso

    runner = QueueWithWorker(isolated_workspace, config)
    try:
        assert runner.worker._scoring_threads() == usable_cores()  # alone here: every core
        elsewhere = {"owner": "other:1:abcd", "host": "other-machine", "pid": 1, "started_at": now_iso(),
                     "beat_at": now_iso(), "running": None}
        write_json_atomic(presence_file(isolated_workspace, elsewhere["owner"]), elsewhere)
        assert runner.worker._scoring_threads() == usable_cores()  # another machine's worker takes none of ours
        announce(isolated_workspace, "second-worker-here", now_iso(), None)
        assert runner.worker._scoring_threads() == max(1, usable_cores() // 2)
    finally:
        runner.close()
        configure_cpu_threads(0)


def test_a_job_id_that_is_not_ours_is_refused_before_it_names_a_path(isolated_workspace):
    from core.data.dataset_versions import DatasetError
    from core.training import topic_jobs

    assert file_jobs.job_folder(isolated_workspace, "classify-20261207-1-ab").parent == \
        file_jobs.jobs_folder(isolated_workspace)
    for bad in ("classify-../../etc", "topics-20261207-ab", "classify-a/b"):
        with pytest.raises(file_jobs.FileJobError, match="is not a file job's id"):
            file_jobs.job_folder(isolated_workspace, bad)
    with pytest.raises(DatasetError, match="is not a topic discovery's id"):
        topic_jobs.job_folder(isolated_workspace, "topics-../x")
    assert topic_jobs.job_folder(isolated_workspace, "topics-1-ab").name == "topics-1-ab"


def test_a_jobs_predictions_are_logged_for_monitoring_and_its_least_certain_texts_queued_for_review(
        isolated_workspace, config_file, tmp_path):
    from sqlalchemy import select

    from core.platform.store import predictions, review_queue
    from core.serving.review_queue import BELOW_THRESHOLD
    from tests.conftest import workspace_store

    config = config_file("[classify]\njob_chunk_rows = 250\n[review]\njob_queue_per_piece = 10\n"
                         "confident_sample_rate = 0.0\n")
    (run,) = train_runs(isolated_workspace, config, save_demo_version(isolated_workspace, config),
                        kinds=("tfidf_logreg",))
    source = comments_csv(tmp_path / "comments.csv", 600)  # three pieces
    runner = QueueWithWorker(isolated_workspace, config)
    try:
        done = wait_for(isolated_workspace, runner.submit_file(source, "comments.csv", "comment", run, "fp32", 0.9,
                                                               ANALYST).job_id)
    finally:
        runner.close()
    assert done.state is JobState.DONE, done.error
    store = workspace_store(isolated_workspace)
    logged = store.rows(select(predictions.c.source, predictions.c.username, predictions.c.run_id))
    assert len(logged) == 600 and {tuple(row.values()) for row in logged} == {("file job", ANALYST.username,
                                                                                run.run_id)}
    queued = store.rows(select(review_queue.c.text, review_queue.c.margin, review_queue.c.reason))
    assert done.summary["needs_review"] > 30  # a high threshold flags many more than the queue takes
    assert len(queued) == 30 and {row["reason"] for row in queued} == {BELOW_THRESHOLD}  # 10 a piece
    result = list(csv.DictReader(io.StringIO(file_jobs.result_path(isolated_workspace, done).read_text("utf-8"))))
    def margin(row: dict) -> float:
        top = sorted((float(v) for k, v in row.items() if k.startswith("score: ")), reverse=True)
        return top[0] - top[1]

    flagged = sorted((row for row in result[:250] if row["needs_review"] == "True"), key=margin)
    taken = {row["text"] for row in queued}
    assert {row["comment"] for row in flagged[:10]} <= taken  # the first piece's least certain ten
    store.dispose()
