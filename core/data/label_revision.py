"""A saved version's labels revised by hand: the next version, every row kept in the split it had.

Checking a saved version (rather than a file before it is split) must not move rows between splits, or runs
on the two versions would be scored on different texts. Rows are named by their line in the version's
``data.jsonl``. Rows of the test split change only when the person says so for this save
(``edit_test_split``): the edits are listed in the new version's ``test_split_edits``, carried on by later
revisions, and shown wherever its runs are evaluated, because scores on an edited test split are not
comparable with scores on the old one.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timezone

import pandas as pd

from core.data.cleaning import CleaningOptions, LabelDecision, apply_cleaning
from core.platform.config import AppConfig
from core.data.dataset_versions import DatasetError, DatasetVersion, load_dataset_version, save_split_rows
from core.data.validate import validate_examples
from core.platform.workspace import Workspace


def checkable_frame(version: DatasetVersion) -> pd.DataFrame:
    """The version's rows as ``line`` (its line in data.jsonl, from 1) / ``text`` / ``label`` / ``split``, plus
    ``source_line`` (the line of the file it came from)."""
    frame = version.frame()
    return pd.DataFrame({"line": range(1, len(frame) + 1), "text": frame["text"].astype(str),
                         "label": frame["label"].astype(str), "split": frame["split"],
                         "source_line": frame["line"]})


def _refuse_unknown(version: DatasetVersion, frame: pd.DataFrame, decisions: tuple[LabelDecision, ...]) -> None:
    """Every decision must name a row of the version and, for a relabel, one of its labels."""
    unknown_lines = [d.line for d in decisions if not 1 <= d.line <= len(frame)]
    if unknown_lines:
        raise DatasetError(f"{version.ref} has no line {', '.join(map(str, unknown_lines))} "
                           f"(its data.jsonl has {len(frame):,} lines)")
    unknown_labels = sorted({d.label for d in decisions if d.action == "relabel" and d.label not in version.labels})
    if unknown_labels:
        raise DatasetError(f"{', '.join(map(repr, unknown_labels))} is not a label of {version.ref} "
                           f"(its labels: {', '.join(version.labels)})")


def _refuse_test_edits(version: DatasetVersion, frame: pd.DataFrame, decisions: tuple[LabelDecision, ...]) -> None:
    in_test = [d.line for d in decisions if frame["split"].iloc[d.line - 1] == "test"]
    if in_test:
        raise DatasetError(
            f"line(s) {', '.join(map(str, in_test))} of {version.ref} are in its test split: changing them changes "
            "what every model on this data is scored against. Nothing was saved; say explicitly that the test "
            "split may be edited (the edit is recorded and shown on the Evaluate page), or keep those rows")


def _refuse_empty_train(version: DatasetVersion, rows: pd.DataFrame) -> None:
    """A label left with rows in validation or test but none to learn from would make the version untrainable."""
    untaught = sorted(set(rows["label"]) - set(rows.loc[rows["split"] == "train", "label"]))
    if untaught:
        raise DatasetError(f"after these changes no training row of {version.ref} would carry "
                           f"{', '.join(map(repr, untaught))}; keep some of them or relabel fewer")


def revise_version(workspace: Workspace, version: DatasetVersion, decisions: tuple[LabelDecision, ...],
                   config: AppConfig, *, created_by: str, edit_test_split: bool = False) -> DatasetVersion:
    """Relabel or drop rows of ``version`` (by data.jsonl line) and save the result as the name's next version;
    ``version`` itself is left as it was. Refuses, writing nothing, when a decision touches the test split
    without ``edit_test_split``."""
    if not decisions:
        raise DatasetError("no row was chosen to relabel or drop: nothing to save")
    if version.unlabelled or version.partly_labelled:
        raise DatasetError(f"{version.ref} has texts without labels; its labels are checked once every text has one")
    frame = checkable_frame(version)
    _refuse_unknown(version, frame, decisions)
    if not edit_test_split:
        _refuse_test_edits(version, frame, decisions)
    cleaned = apply_cleaning(frame, CleaningOptions(label_decisions=decisions))
    step = cleaned.steps[0]
    step.changes = [{**change, "split": frame["split"].iloc[change["line"] - 1],
                     "text": frame["text"].iloc[change["line"] - 1]} for change in step.changes]
    rows = cleaned.frame
    _refuse_empty_train(version, rows)
    report = validate_examples(rows[["line", "text", "label"]], source=version.ref,
                               text_field=version.meta["text_field"], label_field=version.meta["label_field"],
                               config=config)
    edited_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    test_edits = [{**change, "version": version.ref, "by": created_by, "at": edited_at}
                  for change in step.changes if change["split"] == "test"]
    saved_rows = rows.assign(line=rows["source_line"])[["text", "label", "split", "line"]]
    return save_split_rows(
        workspace, version.name, saved_rows, report, created_by=created_by,
        source=f"{version.ref}, labels reviewed", revised_from=version.ref,
        split_plan=version.meta.get("split_plan"),
        cleaning_steps=[*version.meta.get("cleaning_steps", []), asdict(step)],
        test_split_edits=[*version.test_split_edits, *test_edits])


def edited_test_split_note(version: DatasetVersion) -> str | None:
    """What Evaluate says about a version whose test split was edited by hand, or None."""
    edits = version.test_split_edits
    if not edits:
        return None
    relabelled = sum(1 for edit in edits if edit["to"] is not None)
    dropped = len(edits) - relabelled
    where = sorted({edit["version"] for edit in edits})
    return (f"The test split of {version.ref} was edited by hand ({relabelled} label(s) changed, {dropped} row(s) "
            f"dropped, when revising {', '.join(where)}): its scores are measured against the corrected labels and "
            "are not comparable with runs on earlier versions.")



def edited_test_split_note_of(workspace: Workspace, ref: str) -> str | None:
    """:func:`edited_test_split_note` for the version ``ref`` names; None when it is gone (its runs remain)."""
    try:
        return edited_test_split_note(load_dataset_version(workspace, ref))
    except DatasetError:
        return None
