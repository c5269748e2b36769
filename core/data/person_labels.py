"""Labels people give texts from the labelling queue, kept per version until they are saved as the next one.

A version whose labels came from topics (or that keeps texts without a label) has texts no person has labelled.
People label some of them on the Label page; each label is appended to ``workspace/labelling/<name>/v<N>.jsonl``
at once (so a closed browser loses nothing), with who gave it and when; "skip" is kept too, so the text is not
asked again. Saving turns them into the next version: each labelled text takes the person's label, with
``label_source`` "person". A text that had no label joins the train split; one that had a label from its topic
keeps its split (so validation and test stay the same texts, and scores of the versions stay comparable).

A text may fit none of the labels: a person can add a label while labelling (``v<N>.labels.json`` beside the
answers); it is offered with the others, and the next version's label set gains it once a text has it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from core.data.dataset_versions import (
    UNLABELLED_SPLIT, DatasetError, DatasetVersion, partly_labelled_meta, save_next_version,
)
from core.data.validate import ValidationReport, label_key
from core.platform.workspace import Workspace, read_json, write_json_atomic

FROM_PERSON = "person"
DESCRIPTIONS_FILE = "descriptions.json"
#: The longest description kept: one sentence, not a guideline document.
MAX_DESCRIPTION = 300
#: The longest label a person may add while labelling.
MAX_LABEL = 60
#: Where a row's label came from when a person did not give it (a topic, its nearest topic, or none yet).
MACHINE_SOURCES = ("topic", "nearest topic")


@dataclass(frozen=True)
class GivenLabel:
    """One answer from the queue: the row (its ``line`` in the uploaded file), its label (None: skipped)."""

    line: int
    label: str | None
    by: str
    at: str


def labels_file(workspace: Workspace, version: DatasetVersion) -> Path:
    return workspace.root / "labelling" / version.name / f"v{version.version}.jsonl"


def added_labels_file(workspace: Workspace, version: DatasetVersion) -> Path:
    return workspace.root / "labelling" / version.name / f"v{version.version}.labels.json"


def added_labels(workspace: Workspace, version: DatasetVersion) -> list[str]:
    """The labels people added while labelling ``version``, in the order they were added."""
    path = added_labels_file(workspace, version)
    return list(read_json(path)) if path.exists() else []


def labels_to_give(workspace: Workspace, version: DatasetVersion) -> list[str]:
    """The version's labels, then the ones people added while labelling it."""
    return [*version.labels, *added_labels(workspace, version)]


def add_label(workspace: Workspace, version: DatasetVersion, name: str) -> list[str]:
    """Offer a new label on ``version``'s queue; DatasetError, in words, for an empty or overlong name or one
    that is already a label (spelt alike, whatever the case). The labels to give now."""
    if version.multi_label or version.unlabelled:
        raise DatasetError(f"{version.ref} has no label set to add to")
    name = " ".join(str(name).split())
    if not name:
        raise DatasetError("a new label needs a name")
    if len(name) > MAX_LABEL:
        raise DatasetError(f"the label '{name[:40]}…' is longer than {MAX_LABEL} characters: a short name is "
                           "easier to choose")
    known = labels_to_give(workspace, version)
    same = next((label for label in known if label_key(label) == label_key(name)), None)
    if same is not None:
        raise DatasetError(f"'{name}' is already a label ('{same}')")
    path = added_labels_file(workspace, version)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, [*added_labels(workspace, version), name])
    return [*known, name]


def given_labels(workspace: Workspace, version: DatasetVersion) -> dict[int, GivenLabel]:
    """The answers given on ``version`` so far, by line (a later answer for a line replaces an earlier one)."""
    path = labels_file(workspace, version)
    if not path.exists():
        return {}
    answers: dict[int, GivenLabel] = {}
    for row in path.read_text(encoding="utf-8").splitlines():
        if row.strip():
            answer = GivenLabel(**json.loads(row))
            answers[answer.line] = answer
    return answers


def open_rows(version: DatasetVersion) -> pd.DataFrame:
    """The rows no person has labelled: without a label, or labelled from a topic."""
    frame = version.frame()
    if "label_source" not in frame:
        return frame.iloc[0:0]
    return frame[frame["label"].isna() | frame["label_source"].isin(MACHINE_SOURCES)]


def give_labels(workspace: Workspace, version: DatasetVersion, answers: dict[int, str | None], by: str) -> int:
    """Append the answers (line → label, None to skip); DatasetError, in words, for an unknown line or label.
    How many were labels (not skips)."""
    if version.multi_label or version.unlabelled:
        raise DatasetError(f"{version.ref} has no label set to choose from: discover its topics and save them as "
                           f"labels first" if version.unlabelled else f"{version.ref} holds tags, not one label")
    lines = set(open_rows(version)["line"].astype(int))
    unknown_lines = sorted(set(answers) - lines)
    if unknown_lines:
        raise DatasetError(f"line(s) {', '.join(map(str, unknown_lines[:5]))} of {version.ref} are not waiting for "
                           f"a person's label")
    offered = labels_to_give(workspace, version)
    for line, label in answers.items():
        if label is not None and label not in offered:
            raise DatasetError(f"line {line}: {label!r} is not one of {version.ref}'s labels "
                               f"({', '.join(offered)})")
    at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    path = labels_file(workspace, version)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = "".join(json.dumps({"line": int(line), "label": label, "by": by, "at": at}) + "\n"
                      for line, label in answers.items())
    with path.open("a", encoding="utf-8") as handle:
        handle.write(written)  # one write: a reader sees whole lines
    return sum(label is not None for label in answers.values())


def with_person_labels(version: DatasetVersion, answers: dict[int, GivenLabel], labels: list[str]) -> pd.DataFrame:
    """The version's rows with the people's labels in place (and where each came from); ``labels`` is the label
    set they are saved under (the version's, then any added while labelling)."""
    rows = version.frame()
    ids = {label: i for i, label in enumerate(labels)}
    for index, line in zip(rows.index, rows["line"].astype(int)):
        answer = answers.get(line)
        if answer is None or answer.label is None:
            continue
        rows.at[index, "label"] = answer.label
        rows.at[index, "label_id"] = ids[answer.label]
        rows.at[index, "label_source"] = FROM_PERSON
        if rows.at[index, "split"] == UNLABELLED_SPLIT:
            rows.at[index, "split"] = "train"
    return rows


def save_person_labels(workspace: Workspace, version: DatasetVersion, created_by: str) -> DatasetVersion:
    """Save ``version`` with the labels people gave it as the next version of its name."""
    answers = given_labels(workspace, version)
    labelled = {line: a for line, a in answers.items() if a.label is not None}
    if not labelled:
        raise DatasetError(f"no labels given on {version.ref} yet: nothing to save")
    used = {a.label for a in labelled.values()}
    new = [label for label in added_labels(workspace, version) if label in used]  # an added label no text has: dropped
    labels = [*version.labels, *new]
    rows = with_person_labels(version, labelled, labels)
    before = {line: label for line, label in version.frame().set_index("line")["label"].items() if pd.notna(label)}
    changed = sum(line in before and before[line] != a.label for line, a in labelled.items())
    added = sum(line not in before for line in labelled)
    meta = partly_labelled_meta(rows)
    report = ValidationReport.from_dict({**version.report.to_dict(), "usable_rows": meta["labelled_rows"],
                                         "label_counts": meta["label_counts"]})
    described: dict[str, Any] = {
        **{k: v for k, v in version.meta.items() if k not in ("name", "version", "ref", "created_at")},
        **meta, "created_by": created_by, "source": version.ref,
        "people_labels": version.meta.get("people_labels", 0) + len(labelled),
        "from_queue": {"labelled": len(labelled), "new": added, "changed": changed,
                       "confirmed": len(labelled) - added - changed, "labels_added": new},
    }
    return save_next_version(workspace, version.name, rows, labels, report, described)


def label_descriptions(workspace: Workspace, name: str) -> dict[str, str]:
    """The one-sentence descriptions people gave the labels of dataset ``name`` (label → sentence)."""
    path = workspace.root / "labelling" / name / DESCRIPTIONS_FILE
    return read_json(path) if path.exists() else {}


def save_label_descriptions(workspace: Workspace, version: DatasetVersion,
                            descriptions: dict[str, str]) -> dict[str, str]:
    """Keep a sentence per label of ``version``'s dataset (an empty one removes it); DatasetError, in words, for
    a label it does not have or a sentence too long. What is kept now."""
    unknown = sorted(set(descriptions) - set(labels_to_give(workspace, version)))
    if unknown:
        raise DatasetError(f"{', '.join(map(repr, unknown))} is not one of {version.ref}'s labels")
    long = sorted(label for label, text in descriptions.items() if len(text.strip()) > MAX_DESCRIPTION)
    if long:
        raise DatasetError(f"the description of {', '.join(map(repr, long))} is longer than {MAX_DESCRIPTION} "
                           f"characters: one sentence saying what the label covers is enough")
    kept = {**label_descriptions(workspace, version.name), **{k: " ".join(v.split()) for k, v in descriptions.items()}}
    kept = {label: text for label, text in kept.items() if text}
    path = workspace.root / "labelling" / version.name / DESCRIPTIONS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, kept)
    return kept
