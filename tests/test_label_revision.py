"""Checking a saved version's labels: decisions become its next version with every row in the split it had; the
test split changes only when asked, and that edit is recorded and shown where runs are evaluated."""

from __future__ import annotations

import pytest

from core.data.cleaning import CleaningOptions, LabelDecision
from core.data.dataset_versions import DatasetError, list_dataset_versions, load_dataset_version
from core.data.ingest import records_from_list
from core.data.label_revision import edited_test_split_note
from core.data.preparation import prepare
from core.services import Caller, Studio
from core.services.datasets import check_version_labels, revise_labels, save_dataset
from core.data.split import SplitPlan
from tests.conftest import ANALYST, USER
from tests.test_label_issues import FLIPS, rows


@pytest.fixture
def studio(config) -> Studio:
    return Studio(config)


@pytest.fixture
def planted(studio, config):
    """planted/v1: the 90 rows with three planted flips, split 70/15/15."""
    table = records_from_list(rows(), source="planted.jsonl")
    prepared = prepare(table, "text", "label", CleaningOptions(), config)
    return save_dataset(studio, Caller(ANALYST, "s1"), "planted", prepared, SplitPlan(0.7, 0.15, 0.15, 7))


def flipped_lines(version) -> dict[int, str]:
    """The version's data.jsonl lines holding the planted flips, with their true label."""
    frame = version.frame()
    truths = {rows()[row]["text"]: rows()[row]["true"] for row in FLIPS}
    return {i + 1: truths[text] for i, text in enumerate(frame["text"]) if text in truths}


def test_a_saved_versions_check_names_each_rows_line_and_split(studio, planted):
    check = check_version_labels(studio, Caller(ANALYST, "s1"), planted.ref)
    top = {issue.line: issue for issue in check.issues[:len(FLIPS)]}
    assert {line: issue.suggested for line, issue in top.items()} == flipped_lines(planted)
    frame = planted.frame()
    assert all(issue.split == frame["split"].iloc[issue.line - 1] for issue in check.issues)
    assert all(issue.text == frame["text"].iloc[issue.line - 1] for issue in check.issues)


def train_and_test_flips(version) -> tuple[int, int]:
    """One planted flip outside the test split and a row inside it (a flip, when the split drew one there)."""
    frame = version.frame()
    flips = flipped_lines(version)
    outside = next(line for line in flips if frame["split"].iloc[line - 1] != "test")
    inside = next((line for line in flips if frame["split"].iloc[line - 1] == "test"),
                  int(frame.index[frame["split"] == "test"][0]) + 1)
    return outside, inside


def test_decisions_keep_every_row_in_its_split_and_leave_the_old_version_intact(studio, planted, isolated_workspace):
    before = (planted.path / "data.jsonl").read_bytes()
    outside, _ = train_and_test_flips(planted)
    truth = flipped_lines(planted)[outside]
    other = next(line for line in range(1, 91) if line != outside and planted.frame()["split"].iloc[line - 1] == "train")
    second = revise_labels(studio, Caller(ANALYST, "s1"), planted.ref,
                           (LabelDecision(outside, "relabel", truth), LabelDecision(other, "drop")))

    assert second.ref == "planted/v2" and (planted.path / "data.jsonl").read_bytes() == before
    old, new = planted.frame(), second.frame()
    assert len(new) == 89 and old["text"].iloc[other - 1] not in set(new["text"])
    kept = old.drop(index=other - 1).reset_index(drop=True)
    assert new["split"].tolist() == kept["split"].tolist()  # nobody moved between splits
    assert new["line"].tolist() == kept["line"].tolist()  # still named by the line of the uploaded file
    changed = new["label"] != kept["label"]
    assert changed.sum() == 1 and new.loc[changed, "label"].item() == truth
    *_, step = second.meta["cleaning_steps"]
    assert step["name"] == "review_labels" and (step["labels_changed"], step["rows_removed"]) == (1, 1)
    assert {c["line"]: (c["label"], c["to"], c["split"]) for c in step["changes"]} == {
        outside: (old["label"].iloc[outside - 1], truth, old["split"].iloc[outside - 1]),
        other: (old["label"].iloc[other - 1], None, "train")}
    assert second.meta["revised_from"] == "planted/v1" and second.meta["split_plan"] == planted.meta["split_plan"]
    assert second.test_split_edits == [] and edited_test_split_note(second) is None


def test_the_test_split_changes_only_when_asked_and_the_edit_is_recorded(studio, planted, isolated_workspace):
    _, inside = train_and_test_flips(planted)
    decision = (LabelDecision(inside, "relabel", "billing" if planted.frame()["label"].iloc[inside - 1] != "billing"
                              else "app"),)
    with pytest.raises(DatasetError, match=f"line\\(s\\) {inside} of planted/v1 are in its test split.*Nothing was saved"):
        revise_labels(studio, Caller(ANALYST, "s1"), planted.ref, decision)
    assert [v.ref for v in list_dataset_versions(isolated_workspace)] == ["planted/v1"]

    second = revise_labels(studio, Caller(ANALYST, "s1"), planted.ref, decision, edit_test_split=True)
    (edit,) = second.test_split_edits
    assert (edit["line"], edit["to"], edit["split"], edit["version"], edit["by"]) == (
        inside, decision[0].label, "test", "planted/v1", "ana")
    assert second.meta["split_fingerprint"] != planted.meta["split_fingerprint"]  # runs on the two are not compared
    assert "The test split of planted/v2 was edited by hand (1 label(s) changed, 0 row(s) dropped" in edited_test_split_note(second)
    # a later revision (of a training row) carries the record on
    train_line = int(second.frame().index[second.frame()["split"] == "train"][0]) + 1
    third = revise_labels(studio, Caller(ANALYST, "s1"), second.ref, (LabelDecision(train_line, "drop"),))
    assert third.test_split_edits == second.test_split_edits and "planted/v3" in edited_test_split_note(third)


def test_bad_decisions_are_refused_with_what_is_wrong(studio, planted, isolated_workspace):
    analyst = Caller(ANALYST, "s1")
    with pytest.raises(DatasetError, match="planted/v1 has no line 91 \\(its data.jsonl has 90 lines\\)"):
        revise_labels(studio, analyst, planted.ref, (LabelDecision(91, "drop"),))
    with pytest.raises(DatasetError, match="'refunds' is not a label of planted/v1"):
        revise_labels(studio, analyst, planted.ref, (LabelDecision(1, "relabel", "refunds"),))
    with pytest.raises(DatasetError, match="nothing to save"):
        revise_labels(studio, analyst, planted.ref, ())
    frame = planted.frame()
    every_app_row = tuple(LabelDecision(i + 1, "relabel", "billing") for i in range(90)
                          if frame["label"].iloc[i] == "app" and frame["split"].iloc[i] == "train")
    with pytest.raises(DatasetError, match="no training row of planted/v1 would carry 'app'"):
        revise_labels(studio, analyst, planted.ref, every_app_row)
    assert len(list_dataset_versions(isolated_workspace)) == 1


def test_only_people_who_manage_data_check_or_revise_a_version(studio, planted):
    from core.accounts.auth import PermissionDenied

    with pytest.raises(PermissionDenied, match="may not manage data"):
        check_version_labels(studio, Caller(USER), planted.ref)
    with pytest.raises(PermissionDenied, match="may not manage data"):
        revise_labels(studio, Caller(USER), planted.ref, (LabelDecision(1, "drop"),))
    assert load_dataset_version(studio.workspace, "planted").version == 1


def test_the_command_line_checks_a_version_and_applies_edited_output(studio, planted, write_file, capsys):
    import json

    from core.entrypoints.cli import main

    assert main(["labels", "--dataset", "planted/v1"]) == 0
    *issues, summary = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert summary["rows"] == 90 and {i["line"] for i in issues[:3]} == set(flipped_lines(planted))
    assert all(i["split"] in ("train", "validation", "test") for i in issues)
    chosen = [i for i in issues[:3] if i["split"] != "test"]
    test_row = {"line": train_and_test_flips(planted)[1], "action": "drop"}
    decisions = write_file("decisions.jsonl", "".join(json.dumps(i) + "\n" for i in [*chosen, test_row]))

    assert main(["labels", "--dataset", "planted/v1", "--apply", str(decisions)]) == 2  # a test row, not allowed
    assert "are in its test split" in capsys.readouterr().err
    kept = write_file("kept.jsonl", "".join(json.dumps(i) + "\n" for i in chosen)
                      + json.dumps({**test_row, "action": "keep"}) + "\n" + json.dumps(summary) + "\n")
    assert main(["labels", "--dataset", "planted/v1", "--apply", str(kept)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result == {"saved": "planted/v2", "relabelled": len(chosen), "dropped": 0, "test_split_edits": 0}
    second = load_dataset_version(studio.workspace, "planted/v2").frame()
    assert [second["label"].iloc[i["line"] - 1] for i in chosen] == [i["suggested"] for i in chosen]

    broken = write_file("broken.jsonl", '{"line": 3, "action": "relabel", "to": "app"}\n{"action": "drop"}\n')
    assert main(["labels", "--dataset", "planted/v1", "--apply", str(broken)]) == 2
    assert "broken.jsonl, line 2: not a decision" in capsys.readouterr().err
    assert main(["labels", "--data", "x.jsonl", "--apply", str(kept)]) == 2


@pytest.mark.slow  # sentence embeddings of every row: seconds
def test_near_copies_and_outliers_of_a_saved_version_are_named_by_line_and_can_be_dropped(studio, config):
    from core.accounts.auth import PermissionDenied
    from core.services.datasets import find_version_copies
    from tests.test_label_issues import demo_with_planted_copies_and_outlier

    rows = demo_with_planted_copies_and_outlier()
    prepared = prepare(records_from_list(rows, source="planted.jsonl"), "text", "label", CleaningOptions(), config)
    version = save_dataset(studio, Caller(ANALYST, "s1"), "planted", prepared, SplitPlan(0.8, 0.1, 0.1, 7))
    found = find_version_copies(studio, Caller(ANALYST, "s1"), version.ref)
    frame = version.frame()
    (group,) = found.near_copies
    assert [frame["text"].iloc[line - 1] for line in group.lines] == list(group.texts)
    assert set(group.texts) == {"Received an empty box.", "I received an empty box."}
    (outlier,) = found.outliers
    assert frame["text"].iloc[outlier.line - 1] == rows[-1]["text"]
    copy_line = group.lines[list(group.texts).index("I received an empty box.")]
    drops = tuple(LabelDecision(line, "drop") for line in (copy_line, outlier.line))
    split_of = {line: frame["split"].iloc[line - 1] for line in (copy_line, outlier.line)}
    second = revise_labels(studio, Caller(ANALYST, "s1"), version.ref, drops,
                           edit_test_split="test" in split_of.values())
    assert second.meta["rows"] == len(rows) - 2
    assert not {"I received an empty box.", rows[-1]["text"]} & set(second.frame()["text"])
    with pytest.raises(PermissionDenied):
        find_version_copies(studio, Caller(USER), version.ref)


@pytest.mark.slow  # sentence embeddings of every row: seconds
def test_the_command_line_lists_near_copies_and_outliers_as_json_lines(write_file, capsys):
    import json

    from core.entrypoints.cli import main
    from tests.test_label_issues import demo_with_planted_copies_and_outlier

    rows = demo_with_planted_copies_and_outlier()
    data = write_file("planted.jsonl", "".join(json.dumps(row) + "\n" for row in rows))
    assert main(["labels", "--data", str(data), "--near-copies"]) == 0
    group, outlier, summary = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(c["line"], c["label"]) for c in group["near_copies"]] == [(3, "delivery"), (len(rows) - 1, "billing")]
    assert group["labels_differ"] and outlier["outlier"]["line"] == len(rows)
    assert summary["rows"] == len(rows) and (summary["near_copy_groups"], summary["outliers"]) == (1, 1)
