"""Dataset versions: noting an upload, listing and reading versions, checking labels, saving a prepared file
as a version, deleting one.

Besides the use cases, this module names what callers work with on their own upload before anything is
saved: reading and guessing its columns, preparing (validating, cleaning) and planning its split. Those read
nothing from the workspace or the database, so they need no role."""

from __future__ import annotations

from core.accounts.audit import EventType
from core.accounts.auth import Permission
from core.data.cleaning import CleaningOptions, LabelDecision, RareClassAction
from core.data.dataset_versions import (
    DatasetError, DatasetVersion, delete_dataset_version, list_dataset_versions, load_dataset_version,
    suggest_dataset_name,
)
from core.data.ingest import (
    DEMO_DATASET, IngestError, RawTable, guess_columns, read_feedback_bytes, read_feedback_file, read_head,
)
from core.data.label_issues import (
    EmbeddingCheck, FoldProgress, LabelCheck, RowProgress, find_near_copies_and_outliers, find_suspicious_labels,
)
from core.data.label_issues import LabelCheckError
from core.data.label_revision import checkable_frame, edited_test_split_note_of, revise_version
from core.data.preparation import Preparation, prepare, prepare_texts, save_preparation, save_unlabelled
from core.data.split import SplitPlan, split_table, thin_validation
from core.data.tag_issues import TagCheck, TagIssue, find_suspicious_tags
from core.data.tag_preparation import TagPreparation, prepare_tags, save_tag_preparation
from core.data.tags import TagError, TagFormat, TagShape, TaskGuess, TaskType, binary_columns, detect_task
from core.data.validate import Finding, Fix, Severity, ValidationReport
from core.models.pretrained import token_counter
from core.serving.usage import dataset_version_users
from core.services.studio import Caller, Studio

#: Who may read saved versions: those who prepare data, train on it, or merge feedback into it.
READ_VERSIONS = (Permission.MANAGE_DATA, Permission.TRAIN, Permission.REVIEW_FEEDBACK)


def note_upload(studio: Studio, caller: Caller, file_name: str, size: int) -> None:
    """Log that a file came in (before anything is saved from it)."""
    caller.require(Permission.MANAGE_DATA)
    studio.audit(caller, EventType.DATASET_UPLOADED, file=file_name, bytes=size)


def dataset_versions(studio: Studio, caller: Caller) -> list[DatasetVersion]:
    """Every saved version, by name then version."""
    caller.require_any(*READ_VERSIONS)
    return list_dataset_versions(studio.workspace)


def dataset_version(studio: Studio, caller: Caller, ref: str) -> DatasetVersion:
    """One saved version (``name/vN``, or ``name`` for its latest); DatasetError when there is none."""
    caller.require_any(*READ_VERSIONS)
    return load_dataset_version(studio.workspace, ref)


def version_users(studio: Studio, caller: Caller, ref: str) -> list[str]:
    """In words, what deleting ``ref`` would affect (the published model, runs on it); empty when nothing."""
    caller.require(Permission.MANAGE_DATA)
    return dataset_version_users(studio.workspace, ref)


def edited_test_split_note(studio: Studio, caller: Caller, ref: str) -> str | None:
    """Whether the version's test split was edited by hand, in words (runs on it are compared with care)."""
    caller.require_any(Permission.EVALUATE, *READ_VERSIONS)
    return edited_test_split_note_of(studio.workspace, ref)


def check_labels(studio: Studio, caller: Caller, prepared: Preparation,
                 progress: FoldProgress | None = None) -> LabelCheck:
    """Rows of a prepared file whose label looks wrong (core.data.label_issues), for a person to decide on;
    nothing changes until they do."""
    caller.require(Permission.MANAGE_DATA)
    check = find_suspicious_labels(prepared.training_frame(), studio.config, progress)
    studio.audit(caller, EventType.LABELS_CHECKED, file=prepared.table.source, rows=check.rows,
                 suspicious=len(check.issues))
    return check


def check_tags(studio: Studio, caller: Caller, prepared: TagPreparation,
               progress: FoldProgress | None = None) -> TagCheck:
    """Texts of a prepared tagged file whose tags look wrong (core.data.tag_issues), for a person to decide on."""
    caller.require(Permission.MANAGE_DATA)
    check = find_suspicious_tags(prepared.rows, studio.config, progress)
    studio.audit(caller, EventType.LABELS_CHECKED, file=prepared.table.source, rows=check.rows,
                 suspicious=len(check.issues), task="multi-label")
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
    """Near-copies and outliers among a prepared file's rows (core.data.label_issues), for a person to decide on."""
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
    """Save a person's relabel/drop decisions on a saved version as its next version (core.data.label_revision);
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


def save_unlabelled_dataset(studio: Studio, caller: Caller, name: str, prepared: Preparation) -> DatasetVersion:
    """Save prepared texts without labels (:func:`prepare_texts`) as the next version of ``name``: the start of a
    label set (topics, then people, give them labels in later versions)."""
    actor = caller.require(Permission.MANAGE_DATA)
    saved = save_unlabelled(studio.workspace, name, prepared, actor)
    studio.audit(caller, EventType.DATASET_SAVED, dataset=saved.ref, rows=saved.meta["rows"],
                 source=prepared.table.source, task="unlabelled")
    return saved


def save_tagged_dataset(studio: Studio, caller: Caller, name: str, prepared: TagPreparation, plan: SplitPlan,
                        test: TagPreparation | None = None, **origin: object) -> DatasetVersion:
    """Save prepared multi-label rows as the next version of ``name`` (split by iterative stratification);
    ``origin`` (e.g. feedback_examples=12) goes into the audit event."""
    actor = caller.require(Permission.MANAGE_DATA)
    saved = save_tag_preparation(studio.workspace, name, prepared, plan, actor, test=test)
    studio.audit(caller, EventType.DATASET_SAVED, dataset=saved.ref, rows=saved.meta["rows"],
                 source=prepared.table.source, task="multi-label", **origin)
    return saved


def delete_dataset(studio: Studio, caller: Caller, ref: str) -> None:
    """Delete one version for good (the page warns first who uses it: core.serving.usage)."""
    caller.require(Permission.MANAGE_DATA)
    delete_dataset_version(studio.workspace, ref)
    studio.audit(caller, EventType.DATASET_DELETED, dataset=ref)


__all__ = [
    "DEMO_DATASET", "READ_VERSIONS", "CleaningOptions", "DatasetError", "DatasetVersion", "EmbeddingCheck",
    "Finding", "Fix", "IngestError", "LabelCheck", "LabelCheckError", "LabelDecision", "Preparation",
    "RareClassAction", "RawTable", "Severity", "SplitPlan", "ValidationReport", "check_labels",
    "check_version_labels", "dataset_version", "dataset_versions", "delete_dataset", "edited_test_split_note",
    "find_copies", "find_version_copies", "guess_columns", "note_upload", "prepare", "read_feedback_bytes", "read_head",
    "read_feedback_file", "revise_labels", "save_dataset", "prepare_texts", "save_unlabelled_dataset", "split_table", "suggest_dataset_name", "thin_validation", "token_counter",
    "version_users",
    # multi-label data
    "TagCheck", "TagError", "TagFormat", "TagIssue", "TagPreparation", "TagShape", "TaskGuess", "TaskType",
    "binary_columns", "check_tags", "detect_task", "prepare_tags", "save_tagged_dataset",
]
