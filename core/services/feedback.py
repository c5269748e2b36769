"""Reviewing users' corrections and turning the accepted ones into training data."""

from __future__ import annotations

from core.audit import EventType
from core.auth import Permission
from core.dataset_versions import DatasetVersion
from core.feedback import FeedbackItem, accepted_examples, accepted_jsonl, list_feedback, review_feedback
from core.preparation import Preparation
from core.services.datasets import save_dataset
from core.services.studio import Caller, Studio
from core.split import SplitPlan


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


def save_merged(studio: Studio, caller: Caller, name: str, merged: Preparation, base: DatasetVersion,
                examples: int) -> DatasetVersion:
    """Save a base version plus the accepted examples as a new version, split as the base was."""
    caller.require(Permission.REVIEW_FEEDBACK)
    return save_dataset(studio, caller, name, merged, SplitPlan(**base.meta["split_plan"]),
                        source="feedback merge", feedback_examples=examples)
