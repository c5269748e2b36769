"""Suspicious labels: planted flips are found with the right suggestion, and a person's decisions become a
new dataset version whose report lists every change."""

from __future__ import annotations

import contextlib
import json
import os

from collections.abc import Iterator

import pytest

from core.data.cleaning import CleaningOptions, LabelDecision
from core.data.ingest import records_from_list
from core.data.label_issues import LabelCheckError, find_suspicious_labels
from core.data.preparation import prepare
from core.services import Caller
from tests.conftest import ANALYST, USER

TOPICS = {
    "billing": ["charged", "invoice", "refund", "payment", "price", "card", "bill", "fee"],
    "delivery": ["parcel", "courier", "tracking", "package", "shipping", "box", "arrived", "address"],
    "app": ["login", "crash", "screen", "button", "update", "password", "loading", "install"],
}
#: Rows whose label is planted wrong: (row number, the wrong label).
FLIPS = {4: "delivery", 37: "app", 70: "billing"}


def rows() -> list[dict]:
    """90 rows, 30 per topic, each with two of its topic's words; three of them carry a wrong label."""
    made = []
    for topic, words in TOPICS.items():
        for i in range(30):
            made.append({"text": f"my {words[i % 8]} and the {words[(i * 3 + 1) % 8]} again, case {i}",
                         "label": topic})
    for row, wrong in FLIPS.items():
        made[row] = {**made[row], "label": wrong, "true": made[row]["label"]}
    return made


@pytest.fixture
def prepared(config):
    table = records_from_list(rows(), source="planted.jsonl")
    return prepare(table, "text", "label", CleaningOptions(), config)


def test_planted_flips_are_found_first_with_the_right_suggestion(prepared, config):
    check = find_suspicious_labels(prepared.training_frame(), config)
    planted = {prepared.table.lines[row]: rows()[row]["true"] for row in FLIPS}
    top = {issue.line: issue for issue in check.issues[:len(FLIPS)]}
    assert set(top) == set(planted)
    assert {line: issue.suggested for line, issue in top.items()} == planted
    first = check.issues[0]
    assert first.label_score < 0.5 < first.suggested_score and len(first.similar) == config.labels.similar_examples
    assert all(any(word in similar for word in TOPICS[first.suggested]) for similar in first.similar)
    assert check.rows == 90 and check.folds == 5 and len(check.quality) == 90


FORKS: list[int] = []
_COUNTING = [False]
os.register_at_fork(before=lambda: FORKS.append(1) if _COUNTING[0] else None)


@contextlib.contextmanager
def counting_forks() -> Iterator[list[int]]:
    """The processes forked inside the block (the checks run in the web server's threads, where a fork, such
    as cleanlab's default process pool on a machine with several cores, can copy a lock another thread holds
    and hang the page for good)."""
    FORKS.clear()
    _COUNTING[0] = True
    try:
        yield FORKS
    finally:
        _COUNTING[0] = False


def test_the_label_check_forks_no_processes(prepared, config):
    with counting_forks() as forks:
        check = find_suspicious_labels(prepared.training_frame(), config)
    assert check.issues and forks == []


def test_decisions_make_a_new_version_whose_report_lists_every_change(prepared, config, isolated_workspace):
    from core.data.dataset_versions import load_dataset_version
    from core.services import Studio
    from core.services.datasets import save_dataset
    from core.data.split import SplitPlan

    studio, analyst = Studio(config), Caller(ANALYST, "s1")
    plan = SplitPlan.from_config(config.split)
    first = save_dataset(studio, analyst, "planted", prepared, plan)
    lines = [prepared.table.lines[row] for row in FLIPS]
    decisions = (LabelDecision(lines[0], "relabel", "billing"), LabelDecision(lines[1], "drop"))
    reviewed = prepare(prepared.table, "text", "label", CleaningOptions(label_decisions=decisions), config)
    second = save_dataset(studio, analyst, "planted", reviewed, plan)

    assert (first.ref, second.ref) == ("planted/v1", "planted/v2")
    assert load_dataset_version(isolated_workspace, "planted/v1").meta["rows"] == 90  # the old one intact
    frame = second.frame().set_index("line")
    assert frame.loc[lines[0], "label"] == "billing" and lines[1] not in frame.index
    (step,) = second.meta["cleaning_steps"]
    assert step["name"] == "review_labels" and (step["labels_changed"], step["rows_removed"]) == (1, 1)
    assert step["changes"] == [{"line": lines[0], "label": "delivery", "to": "billing"},
                               {"line": lines[1], "label": "app", "to": None}]
    assert json.dumps(step)  # the report is stored as it is shown


def test_checking_needs_two_labels_and_two_rows_each(config):
    import pandas as pd

    one_label = pd.DataFrame({"line": [1, 2, 3], "text": ["a", "b", "c"], "label": ["x", "x", "x"]})
    with pytest.raises(LabelCheckError, match="there is one label"):
        find_suspicious_labels(one_label, config)
    lonely = pd.DataFrame({"line": [1, 2, 3], "text": ["a", "b", "c"], "label": ["x", "x", "y"]})
    with pytest.raises(LabelCheckError, match="at least 2 rows"):
        find_suspicious_labels(lonely, config)


def test_a_decision_says_what_it_needs():
    with pytest.raises(ValueError, match="line 3: a decision is 'drop', or 'relabel' with the new label"):
        LabelDecision(3, "relabel")


def test_only_people_who_manage_data_check_labels(prepared, config):
    from core.accounts.auth import PermissionDenied
    from core.services import Studio
    from core.services.datasets import check_labels

    with pytest.raises(PermissionDenied, match="may not manage data"):
        check_labels(Studio(config), Caller(USER), prepared)


def test_the_command_line_lists_the_same_rows_as_json_lines(write_file, capsys, config):
    from core.entrypoints.cli import main

    data = write_file("planted.jsonl", "".join(json.dumps({"review": r["text"], "topic": r["label"]}) + "\n"
                                               for r in rows()))
    assert main(["labels", "--data", str(data), "--text-field", "review", "--label-field", "topic"]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    *issues, summary = printed
    assert {i["line"] for i in issues[:3]} == {row + 1 for row in FLIPS}  # JSONL: row n is on line n + 1
    assert issues[0]["suggested"] != issues[0]["label"] and issues[0]["similar"]
    assert summary["rows"] == 90 and summary["suspicious"] == len(issues)


def demo_with_planted_copies_and_outlier() -> list[dict]:
    """The demo set (no near-copies, no outliers of its own) plus a reworded copy of its line 3 under another
    label, and a sentence about something else in another language."""
    from core.data.ingest import DEMO_DATASET

    rows = [json.loads(line) for line in DEMO_DATASET.read_text(encoding="utf-8").splitlines()]
    assert rows[2] == {"text": "Received an empty box.", "label": "delivery"}
    return rows + [{"text": "I received an empty box.", "label": "billing"},
                   {"text": "Der Kühlschrank summt nachts sehr laut und ich kann nicht schlafen", "label": "product_quality"}]


@pytest.mark.slow  # sentence embeddings of every row: seconds
def test_near_copies_with_different_labels_and_outliers_are_found_on_sentence_embeddings(config):
    import pandas as pd

    from core.data.label_issues import find_near_copies_and_outliers

    rows = demo_with_planted_copies_and_outlier()
    frame = pd.DataFrame({"line": range(1, len(rows) + 1), "text": [r["text"] for r in rows],
                          "label": [r["label"] for r in rows]})
    seen = []
    with counting_forks() as forks:
        found = find_near_copies_and_outliers(frame, config, lambda done, total: seen.append((done, total)))
    assert forks == []
    copy_line, outlier_line = len(rows) - 1, len(rows)
    first = found.near_copies[0]
    assert first.lines == (3, copy_line) and first.labels == ("delivery", "billing") and first.conflicting
    assert [o.line for o in found.outliers][:1] == [outlier_line] and 0 <= found.outliers[0].score < 0.5
    assert seen[-1] == (len(rows), len(rows)) and found.rows == len(rows)
    unplanted = find_near_copies_and_outliers(frame.iloc[:-2], config)
    assert unplanted.near_copies == [] and unplanted.outliers == []  # the plants, not the data, were found
    with pytest.raises(LabelCheckError, match="at least 11 rows"):
        find_near_copies_and_outliers(frame.iloc[:10], config)
    assert find_near_copies_and_outliers(frame.iloc[:11], config).rows == 11
