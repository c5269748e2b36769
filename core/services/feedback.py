"""Reviewing users' corrections and turning the accepted ones into training data: the verdicts, and merging
the accepted examples into a dataset version (preview, warning, save)."""

from __future__ import annotations

from dataclasses import dataclass

from core.accounts.audit import EventType
from core.accounts.auth import Permission
from core.data.cleaning import CleaningOptions
from core.data.dataset_versions import DatasetError, DatasetVersion, list_dataset_versions, load_dataset_version
from core.data.preparation import Preparation, prepare
from core.data.tag_preparation import TagPreparation, prepare_tags
from core.data.tags import TagFormat, TagShape
from core.data.split import SplitPlan
from core.serving.feedback import (
    FeedbackError, FeedbackItem, accepted_examples, accepted_jsonl, default_merge_base, examples_new_to,
    list_feedback, merge_target_warning, merged_table, review_feedback,
)
from core.serving.publishing import published_run
from core.services.datasets import save_dataset, save_tagged_dataset
from core.services.studio import Caller, Studio


def pending(studio: Studio, caller: Caller) -> list[FeedbackItem]:
    """Corrections waiting for a verdict, newest first."""
    caller.require(Permission.REVIEW_FEEDBACK)
    return list_feedback(studio.store, "pending")


def accepted(studio: Studio, caller: Caller) -> list[dict[str, str]]:
    """Accepted corrections as labelled examples (the latest verdict per text)."""
    caller.require(Permission.REVIEW_FEEDBACK)
    return accepted_examples(studio.store)


def accepted_file(studio: Studio, caller: Caller) -> str:
    """Accepted corrections in the training format (JSONL), to download."""
    caller.require(Permission.REVIEW_FEEDBACK)
    return accepted_jsonl(studio.store)


def review(studio: Studio, caller: Caller, ids: list[int], accept: bool) -> int:
    """Accept or reject corrections; how many changed."""
    changed = review_feedback(studio.store, caller.require(Permission.REVIEW_FEEDBACK), ids, accept)
    studio.audit(caller, EventType.FEEDBACK_REVIEWED, ids=ids, accepted=accept)
    return changed


def new_examples_note(studio: Studio, caller: Caller, examples: list[dict[str, str]] | None = None) -> str:
    """How many accepted examples the published model has not learned from, in words (``examples``: the accepted
    ones the caller has just read with :func:`accepted`, so they are not read twice)."""
    caller.require(Permission.REVIEW_FEEDBACK)
    examples = accepted(studio, caller) if examples is None else examples
    record = published_run(studio.workspace)
    if record is None:
        return f"{len(examples):,} accepted labelled example(s); no model is published yet."
    try:
        fresh = examples_new_to(load_dataset_version(studio.workspace, record.dataset_ref), examples)
    except DatasetError:
        return (f"{len(examples):,} accepted labelled example(s); the published model's dataset "
                f"{record.dataset_ref} was deleted, so which of them it learned cannot be told.")
    return f"{len(fresh):,} accepted labelled example(s) are new to the published model ({record.name})."


@dataclass(frozen=True)
class MergeBases:
    """The versions accepted examples can be merged into, the one chosen by default (the published model's
    own data, else the newest) and the published model's version (None when nothing is published)."""

    refs: list[str]
    default: str | None
    published: str | None


def merge_bases(studio: Studio, caller: Caller) -> MergeBases:
    """Where the accepted examples may go."""
    caller.require(Permission.REVIEW_FEEDBACK)
    record = published_run(studio.workspace)
    return MergeBases([v.ref for v in list_dataset_versions(studio.workspace)], default_merge_base(studio.workspace),
                      record.dataset_ref if record is not None else None)


@dataclass(frozen=True)
class MergePreview:
    """A base version plus every accepted example, validated and cleaned as chosen, not saved yet."""

    base: DatasetVersion
    examples: int
    prepared: Preparation | TagPreparation

    @property
    def labels(self) -> list[str]:
        """The labels (a tagged base's tags) of the merged data."""
        if isinstance(self.prepared, TagPreparation):
            return sorted({tag for row in self.prepared.rows["tags"] for tag in row})
        return sorted(set(self.prepared.training_frame()["label"]))


def merge_preview(studio: Studio, caller: Caller, base_ref: str, options: CleaningOptions) -> MergePreview:
    """The merged data's report and fixes before saving; worked out once per base version, examples and fixes
    (the page asks on every rerun)."""
    examples = accepted(studio, caller)
    base = load_dataset_version(studio.workspace, base_ref)
    key = ("merge", str(studio.workspace.root), base.ref, base.meta["created_at"],
           tuple((e["text"], e["label"]) for e in examples), repr(options))
    def merged() -> Preparation | TagPreparation:
        table = merged_table(base, examples)
        if base.multi_label:  # the cleaning options are single-label's; a tagged base keeps its own choices
            return prepare_tags(table, "text", TagFormat(TagShape.LIST, "tags"), studio.config,
                                keep_untagged=base.meta.get("keep_untagged", False))
        return prepare(table, "text", "label", options, studio.config)

    return MergePreview(base, len(examples), studio.remembered(key, merged))


def merge_warning(studio: Studio, caller: Caller, name: str, preview: MergePreview) -> str | None:
    """Why saving the merge as the next version of ``name`` needs a second look (another dataset, other
    labels), or None."""
    caller.require(Permission.REVIEW_FEEDBACK)
    return merge_target_warning(studio.workspace, name, preview.base, preview.labels)


def save_merged(studio: Studio, caller: Caller, name: str, preview: MergePreview) -> DatasetVersion:
    """Save a base version plus the accepted examples as a new version, split as the base was."""
    caller.require(Permission.REVIEW_FEEDBACK)
    plan = SplitPlan(**preview.base.meta["split_plan"])
    if isinstance(preview.prepared, TagPreparation):
        return save_tagged_dataset(studio, caller, name, preview.prepared, plan, feedback_examples=preview.examples)
    return save_dataset(studio, caller, name, preview.prepared, plan, source="feedback merge",
                        feedback_examples=preview.examples)


__all__ = ["FeedbackError", "FeedbackItem", "MergeBases", "MergePreview", "accepted", "accepted_file",
           "merge_bases", "merge_preview", "merge_warning", "new_examples_note", "pending", "review", "save_merged"]
