"""Dataset versions: noting an upload, saving a prepared file as a version, deleting one."""

from __future__ import annotations

from core.audit import EventType
from core.auth import Permission
from core.cleaning import LabelDecision
from core.dataset_versions import DatasetVersion, delete_dataset_version, load_dataset_version
from core.label_issues import (
    EmbeddingCheck, FoldProgress, LabelCheck, RowProgress, find_near_copies_and_outliers, find_suspicious_labels,
)
from core.label_revision import checkable_frame, revise_version
from core.preparation import Preparation, save_preparation
from core.services.studio import Caller, Studio
from core.split import SplitPlan


def note_upload(studio: Studio, caller: Caller, file_name: str, size: int) -> None:
    """Log that a file came in (before anything is saved from it)."""
    caller.require(Permission.MANAGE_DATA)
    studio.audit(caller, EventType.DATASET_UPLOADED, file=file_name, bytes=size)


def check_labels(studio: Studio, caller: Caller, prepared: Preparation,
                 progress: FoldProgress | None = None) -> LabelCheck:
    """Rows of a prepared file whose label looks wrong (core.label_issues), for a person to decide on;
    nothing changes until they do."""
    caller.require(Permission.MANAGE_DATA)
    check = find_suspicious_labels(prepared.training_frame(), studio.config, progress)
    studio.audit(caller, EventType.LABELS_CHECKED, file=prepared.table.source, rows=check.rows,
                 suspicious=len(check.issues))
    return check


def check_version_labels(studio: Studio, caller: Caller, ref: str,
                         progress: FoldProgress | None = None) -> LabelCheck:
    """Rows of a saved version whose label looks wrong, each with its split and its line in the version's
    data.jsonl (what :func:`revise_labels` takes)."""
    caller.require(Permission.MANAGE_DATA)
    version = load_dataset_version(studio.workspace, ref)
    check = find_suspicious_labels(checkable_frame(version), studio.config, progress)
    studio.audit(caller, EventType.LABELS_CHECKED, dataset=version.ref, rows=check.rows,
                 suspicious=len(check.issues))
    return check


def find_copies(studio: Studio, caller: Caller, prepared: Preparation,
                progress: RowProgress | None = None) -> EmbeddingCheck:
    """Near-copies and outliers among a prepared file's rows (core.label_issues), for a person to decide on."""
    caller.require(Permission.MANAGE_DATA)
    found = find_near_copies_and_outliers(prepared.training_frame(), studio.config, progress)
    studio.audit(caller, EventType.LABELS_CHECKED, file=prepared.table.source, rows=found.rows,
                 near_copies=len(found.near_copies), outliers=len(found.outliers))
    return found


def find_version_copies(studio: Studio, caller: Caller, ref: str,
                        progress: RowProgress | None = None) -> EmbeddingCheck:
    """Near-copies and outliers among a saved version's rows, named by their line in its data.jsonl."""
    caller.require(Permission.MANAGE_DATA)
    version = load_dataset_version(studio.workspace, ref)
    found = find_near_copies_and_outliers(checkable_frame(version), studio.config, progress)
    studio.audit(caller, EventType.LABELS_CHECKED, dataset=version.ref, rows=found.rows,
                 near_copies=len(found.near_copies), outliers=len(found.outliers))
    return found


def revise_labels(studio: Studio, caller: Caller, ref: str, decisions: tuple[LabelDecision, ...],
                  edit_test_split: bool = False) -> DatasetVersion:
    """Save a person's relabel/drop decisions on a saved version as its next version (core.label_revision);
    test-split rows only with ``edit_test_split``."""
    actor = caller.require(Permission.MANAGE_DATA)
    version = load_dataset_version(studio.workspace, ref)
    saved = revise_version(studio.workspace, version, decisions, studio.config, created_by=actor.username,
                           edit_test_split=edit_test_split)
    step = saved.meta["cleaning_steps"][-1]
    studio.audit(caller, EventType.DATASET_SAVED, dataset=saved.ref, rows=saved.meta["rows"], source=version.ref,
                 relabelled=step["labels_changed"], dropped=step["rows_removed"],
                 test_split_edits=sum(1 for change in step["changes"] if change["split"] == "test"))
    return saved


def save_dataset(studio: Studio, caller: Caller, name: str, prepared: Preparation, plan: SplitPlan,
                 test: Preparation | None = None, **origin: object) -> DatasetVersion:
    """Save the cleaned rows as the next version of ``name``; ``origin`` (e.g. feedback_examples=12) goes
    into the audit event beside the source file."""
    actor = caller.require(Permission.MANAGE_DATA)
    saved = save_preparation(studio.workspace, name, prepared, plan, actor, test=test)
    studio.audit(caller, EventType.DATASET_SAVED, dataset=saved.ref, rows=saved.meta["rows"],
                 source=origin.pop("source", prepared.table.source), **origin)
    return saved


def delete_dataset(studio: Studio, caller: Caller, ref: str) -> None:
    """Delete one version for good (the page warns first who uses it: core.usage)."""
    caller.require(Permission.MANAGE_DATA)
    delete_dataset_version(studio.workspace, ref)
    studio.audit(caller, EventType.DATASET_DELETED, dataset=ref)
