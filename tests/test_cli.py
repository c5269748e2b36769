"""The command line, end to end on small files."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from core.entrypoints.cli import main
from core.training.runs import RunState, load_record
from core.platform.workspace import Workspace
from tests.conftest import PROJECT_ROOT

WORDS = {
    "billing": ["charged twice", "refund missing", "invoice wrong", "card declined", "price went up"],
    "delivery": ["parcel late", "courier lost it", "box crushed", "tracking stuck", "wrong address"],
    "app": ["login fails", "app crashes", "checkout button broken", "page loads slowly", "password reset"],
}


def labelled_rows(copies: int = 4):
    return [{"id": f"{label}-{i}-{j}", "review": f"{phrase} again, order {i}{j}", "topic": label}
            for label, phrases in WORDS.items() for i, phrase in enumerate(phrases) for j in range(copies)]


@pytest.fixture
def small_file(write_file):
    return write_file("small.jsonl", "\n".join(json.dumps(r) for r in labelled_rows()) + "\n")


def run_cli(capsys, *args) -> tuple[int, list[dict], str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    objects = [json.loads(line) for line in captured.out.splitlines() if line.startswith("{")]
    return code, objects, captured.err


def test_train_then_predict_end_to_end(capsys, small_file, write_file, isolated_workspace):
    code, results, err = run_cli(capsys, "train", "--data", small_file, "--text-field", "review",
                                 "--label-field", "topic", "--models", "tfidf_logreg,tfidf_nb",
                                 "--workspace", isolated_workspace.root)
    assert code == 0, err
    *results, recommendation = results
    assert [r["model"] for r in results] == ["tfidf_logreg", "tfidf_nb"]
    # the last line recommends one of them, chosen on validation; no transformer, so no verdict on fine-tuning
    assert recommendation["recommended"] in {r["run_id"] for r in results} and recommendation["verdict"] is None
    assert recommendation["clear"] in (True, False)  # 6 validation texts: likely no clear winner, and said so
    assert recommendation["reason"].startswith("highest validation macro-F1" if recommendation["clear"]
                                               else "no clear winner")
    for result in results:
        assert result["state"] == "succeeded"
        assert set(result["test_metrics"]) >= {"accuracy", "macro_f1", "weighted_f1", "macro_precision"}
        assert load_record(isolated_workspace, result["run_id"]).state is RunState.SUCCEEDED
    assert "saved dataset small/v1" in err

    inputs = write_file("new.csv", 'id,review\n7,"charged twice for one order"\n8,""\n9,"the courier lost my parcel"\n')
    output = isolated_workspace.root / "out" / "predictions.jsonl"
    code, summary, err = run_cli(capsys, "predict", "--model", results[0]["run_folder"], "--input", inputs,
                                 "--text-field", "review", "--output", output, "--workspace", isolated_workspace.root)
    assert code == 0, err
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["7", "8", "9"]
    assert rows[0]["label"] == "billing" and rows[2]["label"] == "delivery"
    assert rows[1]["status"] == "empty" and rows[1]["label"] is None
    assert set(rows[0]["scores"]) == set(WORDS) and abs(sum(rows[0]["scores"].values()) - 1) < 1e-6


def test_separate_test_file_becomes_the_test_split(capsys, write_file, isolated_workspace):
    rows = labelled_rows()
    train = write_file("train.jsonl", "\n".join(json.dumps(r) for r in rows[::2]) + "\n")
    test = write_file("test.jsonl", "\n".join(json.dumps(r) for r in rows[1::2]) + "\n")
    code, results, err = run_cli(capsys, "train", "--data", train, "--test-data", test, "--models", "tfidf_nb",
                                 "--workspace", isolated_workspace.root, "--name", "withtest")
    assert code == 0, err
    from core.data.dataset_versions import load_dataset_version

    version = load_dataset_version(Workspace(isolated_workspace.root), "withtest")
    assert sum(version.meta["split_counts"]["test"].values()) == len(rows[1::2])


def test_a_sheet_of_an_excel_workbook_trains_and_is_classified(capsys, tmp_path, isolated_workspace):
    from tests.test_workbook import workbook

    rows = labelled_rows()
    book = tmp_path / "tickets.xlsx"
    book.write_bytes(workbook(Readme=[["exported from the helpdesk"]],
                              Tickets=[["id", "review", "topic"], *[[r["id"], r["review"], r["topic"]] for r in rows]]))
    code, results, err = run_cli(capsys, "train", "--data", book, "--sheet", "Tickets", "--models", "tfidf_nb",
                                 "--workspace", isolated_workspace.root)
    assert code == 0, err
    assert results[0]["state"] == "succeeded" and "saved dataset tickets/v1" in err
    output = tmp_path / "predictions.jsonl"
    code, _, err = run_cli(capsys, "predict", "--model", results[0]["run_folder"], "--input", book, "--sheet",
                           "Tickets", "--output", output, "--workspace", isolated_workspace.root)
    assert code == 0, err
    predicted = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(predicted) == len(rows) and predicted[0]["id"] == rows[0]["id"]
    code, _, err = run_cli(capsys, "train", "--data", book, "--sheet", "Readme", "--models", "tfidf_nb",
                           "--workspace", isolated_workspace.root)  # a sheet without data rows
    assert code == 2 and "tickets.xlsx, sheet 'Readme'" in err and "pick another sheet (Tickets)" in err


def test_multi_label_files_train_and_predict_tags(capsys, tmp_path, isolated_workspace):
    """Delimited tags (detected, or said with --label-separator), a separate test file, yes/no columns."""
    from core.training.runs import run_folder
    from tests.test_tags import ticket_rows

    rows = ticket_rows(120)

    def write(name: str, header: str, lines: list[str]):
        (tmp_path / name).write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
        return tmp_path / name

    tickets = write("tickets.csv", "id,ticket,topics", [f'{r["id"]},"{r["ticket"]}",{r["tags"]}' for r in rows[:100]])
    held_out = write("held.csv", "id,ticket,topics", [f'{r["id"]},"{r["ticket"]}",{r["tags"]}' for r in rows[100:120]])
    code, results, err = run_cli(capsys, "train", "--data", tickets, "--text-field", "ticket", "--label-field",
                                 "topics", "--label-separator", ";", "--test-data", held_out, "--models",
                                 "tfidf_logreg,tfidf_nb", "--workspace", isolated_workspace.root)
    assert code == 0, err
    *runs, recommendation = results
    for run in runs:
        assert set(run["test_metrics"]) >= {"micro_f1", "macro_f1", "samples_f1", "subset_accuracy", "hamming_loss"}
        assert run["test_metrics"]["micro_f1"] > 0.9  # each topic has its own words
    # the taggers' lead judged on the paired bootstrap of the validation texts, each with its interval
    assert recommendation["clear"] in (True, False)
    assert recommendation["reason"].startswith("highest validation micro-F1" if recommendation["clear"]
                                               else "no clear winner: the validation micro-F1 of ")
    for candidate in recommendation["candidates"]:
        low, high = candidate["validation_interval"]
        assert low <= candidate["validation_micro_f1"] <= high
        assert (run_folder(isolated_workspace, candidate["run"]) / "validation_tag_scores.json").exists()
    inputs = write("new.csv", "id,ticket", ['1,"the app crashed and my card was charged twice"', '2,"I cannot log in"'])
    output = tmp_path / "tags.jsonl"
    code, _, err = run_cli(capsys, "predict", "--model", runs[0]["run_folder"], "--input", inputs, "--output",
                           output, "--workspace", isolated_workspace.root)
    assert code == 0, err
    predicted = [json.loads(line) for line in output.read_text().splitlines()]
    assert predicted[0]["labels"] == ["bug", "payments"] and predicted[1]["labels"] == ["login"]
    assert set(predicted[0]["scores"]) == {"bug", "login", "payments", "support"}
    assert predicted[0]["label"] == "bug; payments"
    code, (evaluated,), err = run_cli(capsys, "evaluate", "--model", runs[0]["run_folder"], "--data", held_out,
                                      "--text-field", "ticket", "--label-field", "topics",
                                      "--workspace", isolated_workspace.root)
    assert code == 0, err
    assert evaluated["examples"] == 20 and evaluated["micro_f1"] > 0.9 and len(evaluated["per_tag"]) == 4
    unknown = write("unknown.csv", "ticket,topics", ['"the app crashed",bug;weather', '"card charged twice",payments'])
    code, _, err = run_cli(capsys, "evaluate", "--model", runs[0]["run_folder"], "--data", unknown, "--text-field",
                           "ticket", "--label-field", "topics", "--workspace", isolated_workspace.root)
    assert code == 2 and "does not know: weather" in err

    code, _, err = run_cli(capsys, "train", "--data", tickets, "--text-field", "ticket", "--label-field", "topics",
                           "--models", "tfidf_nb", "--workspace", isolated_workspace.root, "--name", "detected")
    assert code == 0 and "[data] multi-label: 'topics' holds several values separated by ';'" in err
    columns = write("columns.csv", "ticket,bug,payments,support,login", [
        f'"{r["ticket"]}",' + ",".join("1" if t in r["tags"].split(";") else "0"
                                       for t in ("bug", "payments", "support", "login")) for r in rows[:100]])
    code, results, err = run_cli(capsys, "train", "--data", columns, "--label-fields", "bug,payments,support,login",
                                 "--models", "tfidf_logreg", "--workspace", isolated_workspace.root)
    assert code == 0, err
    assert results[0]["test_metrics"]["micro_f1"] > 0.9
    code, _, err = run_cli(capsys, "train", "--data", tickets, "--label-field", "topics", "--label-separator", "|",
                           "--models", "tfidf_nb", "--workspace", isolated_workspace.root)
    assert code == 2 and "the separator '|' splits none of the values of 'topics'" in err


def test_blocking_problems_are_refused_with_the_reason(capsys, write_file, isolated_workspace):
    bad = write_file("bad.jsonl", "\n".join(json.dumps({"text": f"t{i}", "label": "one"}) for i in range(9)) + "\n")
    code, results, err = run_cli(capsys, "train", "--data", bad, "--workspace", isolated_workspace.root)
    assert code == 2 and results == []
    assert "Fewer than two classes" in err.splitlines()[-1]
    assert list(isolated_workspace.runs.iterdir()) == []


@pytest.mark.parametrize("args, message", [
    (["train"], "the following arguments are required: --data"),
    (["train", "--data", "missing.jsonl"], "missing.jsonl: no such file"),
    (["train", "--data", "{small}", "--models", "gpt5"], "unknown model(s) gpt5"),
    (["train", "--data", "{small}", "--text-field", "body"], "no text field 'body'"),
    (["train", "--data", "{small}", "--fix", "make_better"], "unknown --fix make_better"),
    (["train", "--data", "{small}", "--preset", "turbo"], "invalid choice: 'turbo'"),
    (["predict", "--model", "nope", "--input", "{small}", "--output", "o.jsonl"], "no run called 'nope'"),
    (["predict", "--model", "nope", "--input", "{small}", "--output", "o.csv"], "must be a .jsonl file"),
    (["evaluate", "--model", "nope"], "no run called 'nope'"),
    (["evaluate", "--model", "published"], "no model is published yet"),
    (["evaluate", "--model", "x", "--label-field", "topic"], "--text-field and --label-field need --data"),
    (["publish", "--model", "nope"], "no run 'nope'"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_bad_arguments_give_one_line_and_exit_2(capsys, small_file, isolated_workspace, args, message):
    args = [a.replace("{small}", str(small_file)) for a in args] + ["--workspace", str(isolated_workspace.root)] \
        if args[0] != "frobnicate" else args
    code, _, err = run_cli(capsys, *args)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ")
    assert message in err and "Traceback" not in err


@pytest.mark.slow
def test_module_entry_point_has_help_for_every_option():
    result = subprocess.run([sys.executable, "-m", "core", "train", "--help"], cwd=PROJECT_ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    for option in ("--data", "--text-field", "--label-field", "--test-data", "--models", "--preset",
                   "--config", "--workspace"):
        assert option in result.stdout


def test_evaluate_prints_metrics_and_report_then_publish_makes_it_the_default(capsys, small_file, write_file,
                                                                              isolated_workspace):
    ws = ["--workspace", isolated_workspace.root]
    code, results, err = run_cli(capsys, "train", "--data", small_file, "--models", "tfidf_logreg", *ws)
    assert code == 0, err
    run_id = results[0]["run_id"]

    code = main(["evaluate", "--model", run_id, "--workspace", str(isolated_workspace.root)])
    out = capsys.readouterr().out
    assert code == 0
    summary = json.loads(out.splitlines()[0])
    assert summary["metrics"]["accuracy"] == pytest.approx(results[0]["test_metrics"]["accuracy"])
    assert summary["source"] == "test split of small/v1"
    assert "precision" in out and "macro avg" in out  # the classification report as text

    extra = write_file("extra.csv", "text,label\ncharged twice again,Billing\nparcel late again,delivery\n"
                                    "app crashes again,app\nlogin fails again,billing\n")
    code = main(["evaluate", "--model", run_id, "--data", str(extra), "--text-field", "text",
                 "--label-field", "label", "--workspace", str(isolated_workspace.root)])
    summary = json.loads(capsys.readouterr().out.splitlines()[0])
    assert code == 0 and summary["examples"] == 4 and summary["source"] == "extra.csv"
    assert summary["metrics"]["accuracy"] == pytest.approx(0.75)  # 'login fails' is labelled billing on purpose

    code, published, _ = run_cli(capsys, "publish", "--model", run_id, "--by", "ci", *ws)
    assert code == 0 and published[0]["run_id"] == run_id and published[0]["published_by"] == "ci"
    code, summary, _ = run_cli(capsys, "evaluate", "--model", "published", *ws)
    assert code == 0 and summary[0]["run_id"] == run_id


def test_accounts_from_the_command_line_read_the_password_from_stdin(isolated_workspace, monkeypatch, capsys):
    import io

    from core.accounts.auth import Accounts
    from core.platform.config import AppConfig
    from tests.conftest import workspace_store

    ws = ["--workspace", str(isolated_workspace.root)]
    monkeypatch.setattr("sys.stdin", io.StringIO("first admin pw\n"))
    code, _, err = run_cli(capsys, "users", "add", "--username", "ana", "--role", "analyst", *ws)
    assert code == 2 and "the first account must be an admin" in err
    monkeypatch.setattr("sys.stdin", io.StringIO("first admin pw\n"))
    code, created, _ = run_cli(capsys, "users", "add", "--username", "Root", "--role", "admin", *ws)
    assert code == 0 and created == [{"username": "root", "role": "admin"}]
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    code, _, err = run_cli(capsys, "users", "add", "--username", "uma", "--role", "user", *ws)
    assert code == 2 and "at least 8 characters" in err
    monkeypatch.setattr("sys.stdin", io.StringIO("a new admin pw\n"))
    code, _, _ = run_cli(capsys, "users", "reset-password", "--username", "root", *ws)
    assert code == 0
    accounts = Accounts(workspace_store(isolated_workspace), AppConfig().auth)
    assert accounts.authenticate("root", "a new admin pw").username == "root"
    code, listed, _ = run_cli(capsys, "users", "list", *ws)
    assert [a["username"] for a in listed] == ["root"] and "password" not in listed[0]


@pytest.mark.parametrize("args", [("--password", "hunter2-secret"), ("--password=hunter2-secret",),
                                  ("--pw", "hunter2-secret"), ("hunter2-secret",)])
def test_a_password_on_the_command_line_is_refused_and_never_echoed(capsys, isolated_workspace, args):
    code, _, err = run_cli(capsys, "users", "add", "--username", "ana", "--role", "admin",
                           "--workspace", str(isolated_workspace.root), *args)
    assert code == 2 and "hunter2-secret" not in err
    assert "prompt" in err or "not repeated here" in err


def test_a_file_classified_as_a_job_is_read_and_scored_by_a_worker_and_its_result_written(
        capsys, tmp_path, isolated_workspace, config):
    import pandas as pd

    from core.serving.publishing import publish
    from tests.conftest import ANALYST, QueueWithWorker, save_demo_version, train_runs

    (run,) = train_runs(isolated_workspace, config, save_demo_version(isolated_workspace, config),
                        kinds=("tfidf_logreg",))
    source = tmp_path / "comments.csv"
    texts = ["the app crashes when I open it", "my parcel never arrived", "great service, thank you"] * 40
    pd.DataFrame({"ref": [f"c{i}" for i in range(len(texts))], "comment": texts, "store": "north"}).to_csv(
        source, index=False)
    output = tmp_path / "out" / "classified.csv"

    def predict(*extra):
        return run_cli(capsys, "predict", "--model", "published", "--input", source, "--output", output,
                       "--text-field", "comment", "--as-job", "--workspace", isolated_workspace.root, *extra)

    code, _, err = predict()
    assert code == 2 and "no model is published yet" in err
    publish(isolated_workspace, run.run_id, ANALYST)
    code, _, err = run_cli(capsys, "predict", "--model", run.run_id, "--input", source, "--output", output,
                           "--text-field", "comment", "--as-job", "--workspace", isolated_workspace.root)
    assert code == 2 and "--as-job classifies with the published model" in err
    code, _, err = run_cli(capsys, "predict", "--model", "published", "--input", source, "--output",
                           tmp_path / "out.jsonl", "--text-field", "comment", "--as-job",
                           "--workspace", isolated_workspace.root)
    assert code == 2 and "--output must be a .csv file for comments.csv" in err
    runner = QueueWithWorker(isolated_workspace, config)
    try:
        code, results, err = predict()
    finally:
        runner.close()
    assert code == 0, err
    assert "[job] classify-" in err and ": queued" in err  # followed on standard error
    (summary,) = results
    assert summary["rows"] == 120 and summary["run_id"] == run.run_id and summary["job_id"].startswith("classify-")
    written = pd.read_csv(output)
    assert written["ref"].tolist() == [f"c{i}" for i in range(120)] and set(written["store"]) == {"north"}
    assert set(written["predicted_label"]) <= set(run.labels) and written["confidence"].between(0, 1).all()
    assert not list(output.parent.glob(".*partial"))  # nothing half-written left beside it
