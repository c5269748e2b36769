"""The use cases in core.services: one way in for pages, the command line (and the HTTP API), each checking the
role, acting, and leaving the same audit trail whichever door was used."""

from __future__ import annotations

import ast
import json

import pytest
from sqlalchemy import select

from core.accounts.auth import PermissionDenied, Role
from core.entrypoints.cli import main
from core.serving.monitoring import model_usage, prediction_log
from core.services import Caller, Studio
from core.services.accounts import change_account, create_account, create_first_admin
from core.services.classification import (
    NothingPublished, classify, explain_text, explain_with_run, give_feedback,
)
from core.services.datasets import save_dataset
from core.services.publishing import publish_run
from core.services.runs import start_runs
from core.training.runs import RunRequest, list_runs
from core.data.split import SplitPlan
from core.platform.store import events
from tests.conftest import ANALYST, PASSWORD, PROJECT_ROOT, USER, save_demo_version, train_runs

UI_FILES = [PROJECT_ROOT / "Home.py", *sorted((PROJECT_ROOT / "pages").rglob("*.py"))]
#: What only a use case may call: writing the audit trail, or changing data, runs, publications and accounts.
USE_CASE_INTERNALS = {
    "record_event", "record_predictions", "record_feedback", "review_feedback", "record_run_outcome",
    "save_preparation", "save_dataset_version", "delete_dataset_version", "publish", "restore_previous",
    "JobRunner", "execute_run", "Sessions", "delete_run", "query_events", "session_timeline", "prediction_log",
    "feedback_log", "own_predictions", "list_feedback", "accepted_examples", "accepted_jsonl", "Tokens",
    "enqueue", "claim", "ranked", "expire_old", "attach_correction",
}


@pytest.fixture
def studio(config) -> Studio:
    studio = Studio(config)
    yield studio
    studio.close()


def logged(studio: Studio) -> list[dict]:
    """Every audit event, oldest first."""
    return studio.store.rows(select(events).order_by(events.c.id))


def test_no_page_writes_the_audit_trail_or_changes_data_itself():
    """Pages assembled use cases themselves (predict, then write rows, then an event): now only core.services
    does, so the command line and the API cannot miss a step."""
    offenders = []
    for path in UI_FILES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and not node.module.startswith("core.services"):
                offenders += [f"{path.name}: {alias.name}" for alias in node.names if alias.name in USE_CASE_INTERNALS]
            if isinstance(node, ast.Attribute) and node.attr in {"submit", "cancel", "change_role",
                                                                  "reset_password", "set_disabled"}:
                offenders.append(f"{path.name}:{node.lineno}: .{node.attr}(…)")
    assert offenders == []


def test_the_command_line_leaves_the_same_trail_as_the_app(config, write_file, capsys):
    """The CLI's train, publish and predict recorded no events and no prediction rows: Admin › Monitoring and
    Home's recent activity missed everything done from the command line."""
    data = write_file("small.jsonl", "".join(json.dumps({"text": f"{word} problem number {i}", "label": label}) + "\n"
                                             for label, word in (("billing", "invoice"), ("delivery", "parcel"))
                                             for i in range(30)))
    root = str(config.workspace_path)
    assert main(["train", "--data", str(data), "--models", "tfidf_nb", "--workspace", root]) == 0
    run_id = json.loads(capsys.readouterr().out.splitlines()[0])["run_id"]
    assert main(["publish", "--model", run_id, "--workspace", root]) == 0
    texts = write_file("new.txt", "my invoice is wrong\nparcel never came\n")
    output = config.workspace_path / "out.jsonl"
    assert main(["predict", "--model", "published", "--input", str(texts), "--output", str(output),
                 "--workspace", root]) == 0

    studio = Studio(config)
    trail = [(row["event_type"], row["details"].get("via")) for row in logged(studio)]
    assert trail == [("dataset_saved", "command line"), ("training_started", "command line"),
                     ("training_finished", None), ("published", "command line"),
                     ("classified_file", "command line")]
    served = prediction_log(studio.store)
    assert len(served) == 2 and set(served["run_id"]) == {run_id} and set(served["source"]) == {"batch"}
    assert model_usage(served).iloc[0]["predictions"] == 2  # what Admin › Monitoring shows per model
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert 0.5 <= summary["review_threshold"] <= 1.0  # the run's suggested threshold, not 0


def test_each_use_case_checks_the_role_before_it_acts(studio, config):
    """The checks moved out of the persistence modules: each use case makes its own, once."""
    from core.services.datasets import delete_dataset
    from core.services.feedback import review
    from core.services.logs import my_predictions, session_log
    from core.services.publishing import restore_run
    from core.services.runs import cancel_run, delete_run
    from core.services.review import figures as queue_figures, queue
    from core.services.tokens import create_token
    from core.services.classification import my_feedback
    from core.services.datasets import CleaningOptions, dataset_versions, version_users
    from core.services.evaluation import evaluate_file, test_evaluation
    from core.services.feedback import merge_preview
    from core.services.overview import workspace_summary
    from core.services.publishing import publishing_history
    from core.services.runs import runs, transformer_plan

    version = save_demo_version(studio.workspace, config, max_rows=120)
    (run,) = train_runs(studio.workspace, config, version, kinds=("tfidf_nb",))
    before = logged(studio)  # the worker's record of how the run ended
    user, analyst, nobody = Caller(USER, "s-user"), Caller(ANALYST, "s-ana"), Caller(None)
    refused = [
        (user, "train models", lambda c: start_runs(studio, c, [RunRequest(
            version.ref, "tfidf_nb", "quick", config.training.hyperparameters("quick"))])),
        (user, "train models", lambda c: cancel_run(studio, c, run.run_id)),
        (user, "train models", lambda c: delete_run(studio, c, run.run_id)),
        (user, "publish models", lambda c: publish_run(studio, c, run.run_id)),
        (user, "publish models", lambda c: restore_run(studio, c)),
        (user, "manage data", lambda c: save_dataset(studio, c, "x", None, None)),
        (user, "manage data", lambda c: delete_dataset(studio, c, version.ref)),
        (analyst, "manage users", lambda c: create_account(studio, c, "eve", "Eve", "", PASSWORD, Role.ADMIN)),
        (analyst, "manage users", lambda c: change_account(studio, c, "uma", role=Role.ADMIN)),
        (analyst, "manage users", lambda c: create_token(studio, c, "ana", "x", Role.USER)),
        (analyst, "review feedback", lambda c: review(studio, c, [1], True)),
        (analyst, "view logs", lambda c: session_log(studio, c)),
        (nobody, "sign in to classify", lambda c: classify(studio, c, ["hello"])),
        (nobody, "sign in to classify", lambda c: my_predictions(studio, c)),
        (nobody, "sign in to classify", lambda c: explain_text(studio, c, "hello")),
        (user, "evaluate models", lambda c: explain_with_run(studio, c, run.run_id, "hello")),
        (user, "label the review queue", lambda c: queue(studio, c)),
        (analyst, "view logs", lambda c: queue_figures(studio, c)),
        (user, "train models", lambda c: runs(studio, c)),
        (user, "train models", lambda c: transformer_plan(studio, c, version, "quick", None)),
        (user, "manage data", lambda c: dataset_versions(studio, c)),
        (user, "manage data", lambda c: version_users(studio, c, version.ref)),
        (user, "evaluate models", lambda c: test_evaluation(studio, c, run)),
        (user, "evaluate models", lambda c: evaluate_file(studio, c, run.run_id, None, "text", "label")),
        (user, "evaluate models", lambda c: publishing_history(studio, c)),
        (analyst, "review feedback", lambda c: merge_preview(studio, c, version.ref, CleaningOptions())),
        (nobody, "sign in to give feedback", lambda c: my_feedback(studio, c)),
        (nobody, "sign in first", lambda c: workspace_summary(studio, c)),
    ]
    for caller, words, use_case in refused:
        with pytest.raises(PermissionDenied, match=words):
            use_case(caller)
    assert logged(studio) == before  # nothing was done, so nothing more is on record
    assert [r.run_id for r in list_runs(studio.workspace)] == [run.run_id]  # and the run was not deleted


def test_evaluating_a_file_is_logged_with_the_run_the_file_and_the_result(studio, config, write_file, capsys):
    """Evaluating an uploaded file had no role check of its own and left no trace; from the page and the command
    line alike it is now one event saying which run, which file, how many rows and the macro-F1."""
    from core.services.datasets import read_feedback_file
    from core.services.evaluation import evaluate_file

    version = save_demo_version(studio.workspace, config, max_rows=120)
    (run,) = train_runs(studio.workspace, config, version, kinds=("tfidf_nb",))
    rows = version.frame()[["text", "label"]].head(20).to_dict(orient="records")
    path = write_file("other.jsonl", "".join(json.dumps(row) + "\n" for row in rows))
    evaluation, record = evaluate_file(studio, Caller(ANALYST, "s-ana"), run.run_id,
                                       read_feedback_file(path, 10**6), "text", "label")
    assert record.run_id == run.run_id and evaluation.examples == 20
    assert main(["evaluate", "--model", run.run_id, "--data", str(path), "--workspace", str(config.workspace_path)]) == 0
    trail = [row for row in logged(studio) if row["event_type"] == "file_evaluated"]
    assert [(row["username"], row["details"]["run"], row["details"]["rows"], row["details"].get("via"))
            for row in trail] == [("ana", run.run_id, 20, None), (trail[1]["username"], run.run_id, 20, "command line")]
    assert trail[0]["details"]["file"] == "other.jsonl"
    assert trail[0]["details"]["macro_f1"] == pytest.approx(evaluation.metrics["macro_f1"])


def test_classifying_logs_one_event_and_a_row_per_text_with_the_suggested_threshold(studio, config):
    with pytest.raises(NothingPublished, match="no model is published yet"):
        classify(studio, Caller(USER, "s1"), ["hello"])
    version = save_demo_version(studio.workspace, config, max_rows=120)
    (run,) = train_runs(studio.workspace, config, version, kinds=("tfidf_nb",))
    publish_run(studio, Caller(ANALYST, "s0"), run.run_id)
    one = classify(studio, Caller(USER, "s1"), ["the app keeps crashing"])
    assert one.record.run_id == run.run_id and one.threshold == config.classify.review_threshold  # small test split
    many = classify(studio, Caller(USER, "s1"), ["late parcel", "", "refund please"], threshold=0.99,
                    file_name="batch.csv")
    assert [p.status for p in many.predictions] == ["ok", "empty", "ok"]
    assert all(p.needs_review for p in many.predictions if p.status == "ok")  # 0.99: nothing is that sure here
    trail = [(row["event_type"], row["session_id"]) for row in logged(studio)]
    assert trail == [("training_finished", None), ("published", "s0"), ("classified_text", "s1"),
                     ("classified_file", "s1")]  # the worker logs how the run ended
    assert len(prediction_log(studio.store)) == 4
    item = give_feedback(studio, Caller(USER, "s1"), one.record, "the app keeps crashing",
                         one.predictions[0].label, one.predictions[0].score, one.record.labels[0])
    assert logged(studio)[-1]["details"] == {"run": run.run_id, "feedback_id": item.id, "correct": item.is_correct}


def test_an_account_change_stops_at_a_refusal_and_says_what_was_done_before_it(studio):
    admin = create_first_admin(studio, Caller(None, "s0"), "boss", "Boss", "", PASSWORD)
    boss = Caller(admin.actor, "s0")
    create_account(studio, boss, "ana", "Ana", "", PASSWORD, Role.ANALYST)
    change = change_account(studio, boss, "ana", role=Role.USER, password="password")
    assert change.done == ["role user"] and "too easy to guess" in change.refusal
    last = change_account(studio, boss, "boss", role=Role.USER)
    assert last.done == [] and "last active admin" in last.refusal
    trail = [(row["event_type"], row["username"], row["details"]) for row in logged(studio)]
    assert trail == [("account_created", "boss", {"created": "boss", "role": "admin", "first_admin": True}),
                     ("account_created", "boss", {"created": "ana", "role": "analyst"}),
                     ("account_changed", "boss", {"account": "ana", "changes": ["role user"]})]


def test_saving_a_dataset_records_where_it_came_from(studio, config):
    from core.data.cleaning import CleaningOptions
    from core.data.ingest import DEMO_DATASET, read_feedback_file
    from core.data.preparation import prepare

    prepared = prepare(read_feedback_file(DEMO_DATASET, 10_000_000), "text", "label", CleaningOptions(), config)
    saved = save_dataset(studio, Caller(ANALYST, "s1", "api"), "demo", prepared, SplitPlan.from_config(config.split))
    assert logged(studio)[-1]["details"] == {"dataset": saved.ref, "rows": saved.meta["rows"],
                                             "source": DEMO_DATASET.name, "via": "HTTP API"}
