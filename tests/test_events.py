"""Each audited action records its event (the ones not already checked by the page and journey tests)."""

from __future__ import annotations

import time

from sqlalchemy import select

from core.training.runs import RunRequest
from core.platform.store import events
from tests.conftest import ADMIN, ANALYST, QueueWithWorker, save_demo_version, wait_until, workspace_store
from tests.test_pages import event_types, open_page
from tests.test_training import tiny_config


def test_training_outcomes_are_recorded_by_the_job_runner(isolated_workspace, config_file, tiny_bert, tmp_path):
    store = workspace_store(isolated_workspace)
    config = tiny_config(config_file, tiny_bert, epochs=50, patience=100)
    version = save_demo_version(isolated_workspace, config)
    runner = QueueWithWorker(isolated_workspace, config, store)
    hyper = config.training.hyperparameters("quick")
    first = runner.submit(RunRequest(version.ref, "tfidf_nb", "quick", hyper), ANALYST).run_id
    long = runner.submit(RunRequest(version.ref, "transformer", "quick", hyper), ANALYST).run_id
    queued = runner.submit(RunRequest(version.ref, "tfidf_logreg", "quick", hyper), ANALYST).run_id
    runner.wait(first, timeout=120)
    assert runner.cancel(queued, ADMIN)  # cancelled before it started
    assert wait_until(lambda: runner.snapshot(long).step >= 2), "the transformer run did not start training"
    assert runner.cancel(long, ADMIN)
    runner.wait(long, timeout=120)
    runner.close()

    broken = config_file(f'[model]\nname = "{tmp_path / "no-such-model"}"\n')
    failing = QueueWithWorker(isolated_workspace, broken, store)
    failing.wait(failing.submit(RunRequest(version.ref, "transformer", "quick", hyper), ANALYST).run_id, timeout=120)
    failing.close()

    rows = {(r["event_type"], r["details"]["run"]): r for r in store.rows(select(events))}
    assert rows[("training_finished", first)]["username"] == "ana"
    assert rows[("training_finished", first)]["details"]["test_macro_f1"] > 0
    for run_id in (queued, long):
        cancelled = rows[("training_cancelled", run_id)]
        assert cancelled["username"] == "root" and cancelled["details"]["cancelled_by"] == "root"
    (failure,) = [r for (kind, _), r in rows.items() if kind == "training_failed"]
    assert "no-such-model" in failure["details"]["error"]
    assert len(rows) == 4  # one event per run, never two


def test_uploading_and_deleting_data_are_recorded(isolated_workspace, config):
    save_demo_version(isolated_workspace, config, name="old")
    app = open_page("pages/views/data.py", as_user="ana")
    app.file_uploader(key="upload:0").set_value(("tickets.csv", b"text,label\nlate,delivery\nrefund,billing\n",
                                               "text/csv")).run()
    app.selectbox(key="delete_ref").set_value("old/v1")
    app.checkbox(key="delete_confirm:old/v1").check().run()
    app.button(key="delete_version").click().run()
    assert not app.exception, app.exception
    kinds = event_types(isolated_workspace)
    assert "dataset_uploaded" in kinds and "dataset_deleted" in kinds
    details = {r["event_type"]: r["details"] for r in workspace_store(isolated_workspace).rows(select(events))}
    assert details["dataset_uploaded"]["file"] == "tickets.csv" and details["dataset_deleted"] == {"dataset": "old/v1"}


def test_an_old_session_expires(isolated_workspace):
    app = open_page(as_user="ana")
    app.session_state["fs_signed_in_at"] = time.time() - 13 * 3600  # older than auth.session_hours
    app.run()
    assert any("Your session expired" in i.value for i in app.info)
    assert any(b.label == "Sign in" for b in app.button)
    assert event_types(isolated_workspace)[-1] == "session_expired"


def test_the_session_log_reads_every_detail_as_words(isolated_workspace):
    """It showed raw values: "replaced: None", "correct: False", "test macro f1: 0.9123456789"."""
    import pandas as pd

    from core.accounts.audit import readable_events

    frame = pd.DataFrame({
        "time": ["2026-12-07T10:00:00+00:00"] * 3, "username": ["ana", "uma", None], "role": ["analyst", "user", None],
        "session_id": ["s1", "s2", None], "event_type": ["published", "feedback_given", "training_finished"],
        "details": ['{"run": "r1", "replaced": null}', '{"correct": false, "labels": ["billing", "delivery"]}',
                    '{"run": "r2", "test_macro_f1": 0.9123456789, "train_seconds": 12.0, "cancelled_by": null}'],
    })
    shown = readable_events(frame, run_name={"r1": "TF-IDF, 07 Dec 10:00, demo/v1", "r2": "Transformer"}.get)
    assert shown["details"].tolist() == [
        "run: TF-IDF, 07 Dec 10:00, demo/v1 · replaced: nothing (the first model published)",
        "correct: no · labels: billing, delivery",
        "run: Transformer · test macro f1: 0.912 · train seconds: 12 · cancelled by: nobody",
    ]
    assert not any(word in " ".join(shown["details"]) for word in ("None", "True", "False", "null"))
