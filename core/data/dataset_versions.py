"""Saved dataset versions: immutable, fingerprinted folders under ``workspace/datasets``.

A version folder ``datasets/<name>/v<N>/`` holds

- ``data.jsonl``: one row per example: ``text``, ``label``, ``label_id``, ``split``, ``line``;
- ``labels.json``: the label names in id order (the id↔label map);
- ``report.json``: the validation report of the saved data;
- ``meta.json``: source, fields, cleaning steps, split plan, counts and fingerprints.

The folder is assembled in the workspace's staging area and renamed into
place in one step, so a failed save leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from core.data.multilabel_split import tag_split_counts
from core.data.split import SplitPlan, split_counts, stratified_split
from core.data.validate import ValidationReport
from core.platform.workspace import Workspace, read_json, remove_folder_atomic, staged_folder, write_json_atomic

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
VERSION_PATTERN = re.compile(r"^v(\d+)$")
#: meta.json's ``task`` of a version whose texts carry a list of tags each.
MULTI_LABEL = "multi-label"
#: meta.json's ``task`` of a version of texts without labels, and the split its rows sit in (no split: they
#: are neither trained nor tested on until they carry labels).
UNLABELLED = "unlabelled"
UNLABELLED_SPLIT = "unlabelled"
#: Saves of one name racing for its next version number: how many numbers one save tries.
SAVE_ATTEMPTS = 20


class DatasetError(ValueError):
    """A dataset version that cannot be saved, found or deleted, and why."""


def build_label_map(labels: list[str]) -> list[str]:
    """Label names in id order; sorted, so the same classes always get the same ids."""
    return sorted(set(labels))


def hash_rows(rows: list[list[str]]) -> str:
    """A SHA-256 over rows written as JSON and sorted, so row order does not matter."""
    digest = hashlib.sha256()
    for line in sorted(json.dumps(row, ensure_ascii=False) for row in rows):
        digest.update(line.encode("utf-8") + b"\n")
    return digest.hexdigest()


def fingerprint_rows(texts: list[str], labels: list[str]) -> str:
    """A content hash of the examples, independent of file format and row order."""
    return hash_rows([list(pair) for pair in zip(texts, labels)])


def fingerprint_tagged(texts: list[str], tags: list[list[str]], assignment: list[str] | None = None) -> str:
    """The content hash of multi-label examples (tags in any order count alike), with their splits if given."""
    rows = [[text, sorted(row)] for text, row in zip(texts, tags)]
    return hash_rows([row + [split] for row, split in zip(rows, assignment)] if assignment else rows)


def fingerprint_split(texts: list[str], labels: list[str], assignment: list[str]) -> str:
    """A hash of which example sits in which split: runs are comparable only if equal."""
    return hash_rows([list(triple) for triple in zip(texts, labels, assignment)])


@dataclass(frozen=True)
class DatasetVersion:
    """A saved version; its files are read lazily."""

    name: str
    version: int
    path: Path

    @property
    def ref(self) -> str:
        """How runs and the command line name this version: ``name/vN``."""
        return f"{self.name}/v{self.version}"

    @cached_property
    def meta(self) -> dict[str, Any]:
        return read_json(self.path / "meta.json")

    @property
    def test_split_edits(self) -> list[dict[str, Any]]:
        """Test-split rows a person relabelled or dropped by hand, here or in the versions this one was revised
        from (core.data.label_revision): scores on this test split are not comparable with the earlier versions'."""
        return self.meta.get("test_split_edits", [])

    @cached_property
    def labels(self) -> list[str]:
        """The label names (a multi-label version's tags) in id order."""
        return read_json(self.path / "labels.json")

    @property
    def multi_label(self) -> bool:
        """Whether each text carries a list of tags (``tags``/``tag_ids`` columns) rather than one label."""
        return self.meta.get("task") == MULTI_LABEL

    @property
    def unlabelled(self) -> bool:
        """Whether no text carries a label yet (topics or people give them labels in a later version)."""
        return self.meta.get("task") == UNLABELLED

    @property
    def partly_labelled(self) -> bool:
        """Whether some texts carry labels and others not yet (labels from topics, the rest for people)."""
        return not self.unlabelled and self.meta.get("unlabelled_rows", 0) > 0

    def require_labels(self) -> None:
        """Refuse, in words, to train or evaluate on a version without labelled texts."""
        if self.unlabelled:
            raise DatasetError(f"{self.ref} has no labelled texts yet: discover its topics on the Topics page (or "
                               f"python -m core topics) and save them as labels, then train on that version")

    @cached_property
    def report(self) -> ValidationReport:
        return ValidationReport.from_dict(read_json(self.path / "report.json"))

    def frame(self) -> pd.DataFrame:
        """All rows with their split, as saved."""
        return pd.read_json(self.path / "data.jsonl", lines=True, dtype={"text": str, "label": str})

    def split_frame(self, split: str) -> pd.DataFrame:
        frame = self.frame()
        return frame[frame["split"] == split].reset_index(drop=True)


def suggest_dataset_name(file_name: str) -> str:
    """A valid dataset name from an uploaded file's name ("Shop reviews (May).csv" -> "Shop-reviews-May")."""
    stem = Path(file_name).stem if "." in file_name else file_name
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-._")[:64].rstrip("-._")
    return name or "dataset"


def _check_name(name: str) -> str:
    if not NAME_PATTERN.match(name or ""):
        raise DatasetError(
            f"dataset name {name!r} is not allowed: use 1 to 64 letters, digits, '-', '_' or '.', "
            "starting with a letter or digit")
    return name


def _versions_of(workspace: Workspace, name: str) -> list[DatasetVersion]:
    folder = workspace.datasets / name
    found = []
    for child in folder.iterdir() if folder.is_dir() else []:
        match = VERSION_PATTERN.match(child.name)
        if match and (child / "meta.json").exists():
            found.append(DatasetVersion(name, int(match.group(1)), child))
    return sorted(found, key=lambda v: v.version)


def list_dataset_versions(workspace: Workspace) -> list[DatasetVersion]:
    """Every saved version, by name then version."""
    if not workspace.datasets.is_dir():
        return []
    return [v for folder in sorted(workspace.datasets.iterdir()) if folder.is_dir()
            for v in _versions_of(workspace, folder.name)]


def load_dataset_version(workspace: Workspace, ref: str) -> DatasetVersion:
    """Find ``name/vN`` (or ``name`` for its latest version)."""
    name, _, version = ref.partition("/")
    versions = _versions_of(workspace, _check_name(name))
    if not versions:
        raise DatasetError(f"no saved dataset called {name!r}")
    if not version:
        return versions[-1]
    match = [v for v in versions if f"v{v.version}" == version]
    if not match:
        raise DatasetError(f"dataset {name!r} has no version {version!r} "
                           f"(saved: {', '.join('v%d' % v.version for v in versions)})")
    return match[0]


def _refuse_unsaveable(name: str, report: ValidationReport) -> None:
    _check_name(name)
    if report.blocks_training:
        raise DatasetError("the data still has blocking problems: "
                           + "; ".join(f.title for f in report.errors))


def save_dataset_version(workspace: Workspace, name: str, frame: pd.DataFrame, report: ValidationReport,
                         plan: SplitPlan, *, source: str, cleaning_steps: list[dict[str, Any]] | None = None,
                         created_by: str | None = None, test_frame: pd.DataFrame | None = None) -> DatasetVersion:
    """Split and save clean ``line``/``text``/``label`` rows as the next version of ``name``.

    With ``test_frame`` (rows from a separate test file), those rows are the
    test split and ``frame`` is split into train and validation only.
    """
    _refuse_unsaveable(name, report)
    texts = frame["text"].astype(str).tolist()
    labels = frame["label"].astype(str).tolist()
    lines = frame["line"].astype(int).tolist()
    if test_frame is not None:
        kept = plan.train + plan.validation
        plan = SplitPlan(plan.train / kept, plan.validation / kept, 0.0, plan.seed)
    assignment = stratified_split(texts, labels, plan)
    if test_frame is not None:
        unknown = set(test_frame["label"].astype(str)) - set(labels)
        if unknown:
            raise DatasetError(f"the test file has labels the training data lacks: {', '.join(sorted(unknown))}")
        texts += test_frame["text"].astype(str).tolist()
        labels += test_frame["label"].astype(str).tolist()
        lines += test_frame["line"].astype(int).tolist()
        assignment += ["test"] * len(test_frame)
    rows = pd.DataFrame({"text": texts, "label": labels, "split": assignment, "line": lines})
    return save_split_rows(workspace, name, rows, report, created_by=created_by, source=source,
                           split_plan=asdict(plan), cleaning_steps=cleaning_steps or [])


def save_split_rows(workspace: Workspace, name: str, rows: pd.DataFrame, report: ValidationReport, *,
                    created_by: str | None, source: str, **described: Any) -> DatasetVersion:
    """Save ``text``/``label``/``split``/``line`` rows, each already in its split, as the next version of
    ``name``; ``described`` (split plan, cleaning steps, …) goes into meta.json as it is."""
    _refuse_unsaveable(name, report)
    texts, labels, assignment = rows["text"].tolist(), rows["label"].tolist(), rows["split"].tolist()
    label_map = build_label_map(labels)
    ids = {label: i for i, label in enumerate(label_map)}
    rows = pd.DataFrame({"text": texts, "label": labels, "label_id": [ids[l] for l in labels],
                         "split": assignment, "line": rows["line"].astype(int).tolist()})
    described = {
        "created_by": created_by, "source": source,
        "text_field": report.text_field, "label_field": report.label_field,
        "rows": len(rows), "labels": label_map,
        "label_counts": dict(sorted(pd.Series(labels).value_counts().items())),
        "split_counts": split_counts(labels, assignment),
        "fingerprint": fingerprint_rows(texts, labels),
        "split_fingerprint": fingerprint_split(texts, labels, assignment),
        **described,
    }
    return save_next_version(workspace, name, rows, label_map, report, described)


def save_tagged_rows(workspace: Workspace, name: str, rows: pd.DataFrame, report: ValidationReport, *,
                     created_by: str | None, source: str, **described: Any) -> DatasetVersion:
    """Save multi-label ``text``/``tags``/``split``/``line`` rows (``tags`` a list per row), each in its split,
    as the next version of ``name``: each row keeps its tags (sorted), their ids, and, for reading, ``label``
    (the tags joined by "; ")."""
    _refuse_unsaveable(name, report)
    texts, assignment = rows["text"].tolist(), rows["split"].tolist()
    tags = [sorted(row) for row in rows["tags"]]
    label_map = build_label_map([tag for row in tags for tag in row])
    ids = {tag: i for i, tag in enumerate(label_map)}
    saved = pd.DataFrame({"text": texts, "tags": tags, "tag_ids": [[ids[t] for t in row] for row in tags],
                          "label": ["; ".join(row) for row in tags], "split": assignment,
                          "line": rows["line"].astype(int).tolist()})
    described = {
        "created_by": created_by, "source": source, "task": MULTI_LABEL,
        "text_field": report.text_field, "label_field": report.label_field,
        "rows": len(saved), "labels": label_map,
        "label_counts": dict(sorted(Counter(tag for row in tags for tag in row).items())),
        "split_counts": tag_split_counts(tags, assignment),
        "split_sizes": {split: assignment.count(split) for split in ("train", "validation", "test")},
        "fingerprint": fingerprint_tagged(texts, tags),
        "split_fingerprint": fingerprint_tagged(texts, tags, assignment),
        **described,
    }
    return save_next_version(workspace, name, saved, label_map, report, described)


def save_unlabelled_rows(workspace: Workspace, name: str, rows: pd.DataFrame, report: ValidationReport, *,
                         created_by: str | None, source: str, **described: Any) -> DatasetVersion:
    """Save ``line``/``text`` rows without labels as the next version of ``name``: every row in
    :data:`UNLABELLED_SPLIT`, no label names."""
    _refuse_unsaveable(name, report)
    texts = rows["text"].astype(str).tolist()
    saved = pd.DataFrame({"text": texts, "label": None, "label_id": None, "split": UNLABELLED_SPLIT,
                          "line": rows["line"].astype(int).tolist()})
    described = {
        "created_by": created_by, "source": source, "task": UNLABELLED, "text_field": report.text_field,
        "label_field": None, "rows": len(saved), "labelled_rows": 0, "unlabelled_rows": len(saved), "labels": [],
        "label_counts": {}, "fingerprint": hash_rows([[text] for text in texts]), **described,
    }
    return save_next_version(workspace, name, saved, [], report, described)


def partly_labelled_meta(rows: pd.DataFrame) -> dict[str, Any]:
    """What a version whose texts are labelled in part says of itself: how many are labelled, by which source
    (``label_source``), per label and split, and the fingerprints runs compare (of the labelled rows)."""
    labelled = rows[rows["label"].notna()]
    texts, labels, splits = labelled["text"].tolist(), labelled["label"].tolist(), labelled["split"].tolist()
    unlabelled = rows.loc[rows["label"].isna(), "text"].tolist()
    return {"rows": len(rows), "labelled_rows": len(labelled), "unlabelled_rows": len(unlabelled),
            "label_counts": dict(sorted(Counter(labels).items())), "split_counts": split_counts(labels, splits),
            "label_sources": dict(Counter(labelled["label_source"].fillna("file"))),
            "fingerprint": hash_rows([[t, l] for t, l in zip(texts, labels)] + [[t] for t in unlabelled]),
            "labelled_fingerprint": fingerprint_rows(texts, labels),
            "split_fingerprint": fingerprint_split(texts, labels, splits)}


def save_next_version(workspace: Workspace, name: str, rows: pd.DataFrame, label_map: list[str],
                       report: ValidationReport, described: dict[str, Any]) -> DatasetVersion:
    """Write the rows as the next free version of ``name`` (another save may take a number first: retried)."""
    for _ in range(SAVE_ATTEMPTS):
        existing = _versions_of(workspace, name)
        try:
            return _write_version(workspace, name, (existing[-1].version + 1) if existing else 1, rows, label_map,
                                  report, described)
        except FileExistsError:
            continue
    raise DatasetError(f"{name} could not be saved: other saves of the same name kept taking the next version; "
                       "try again")


def _write_version(workspace: Workspace, name: str, version: int, rows: pd.DataFrame, label_map: list[str],
                   report: ValidationReport, described: dict[str, Any]) -> DatasetVersion:
    """Write ``name/v<version>`` through the staging area; FileExistsError when that version appeared meanwhile."""
    destination = workspace.datasets / name / f"v{version}"
    meta = {"name": name, "version": version, "ref": f"{name}/v{version}",
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), **described}
    with staged_folder(workspace, destination) as staging:
        rows.to_json(staging / "data.jsonl", orient="records", lines=True, force_ascii=False)
        write_json_atomic(staging / "labels.json", label_map)
        write_json_atomic(staging / "report.json", report.to_dict())
        write_json_atomic(staging / "meta.json", meta)
    return DatasetVersion(name, version, destination)


def delete_dataset_version(workspace: Workspace, ref: str) -> None:
    """Remove one version in a single step; the name's folder goes when it is empty."""
    version = load_dataset_version(workspace, ref)
    if "/" not in ref:
        raise DatasetError(f"say which version of {ref!r} to delete, e.g. {version.ref}")
    remove_folder_atomic(workspace, version.path)
    parent = version.path.parent
    if parent.is_dir() and not any(parent.iterdir()):
        parent.rmdir()
