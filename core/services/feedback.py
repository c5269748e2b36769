"""Reviewing users' corrections and turning the accepted ones into training data."""

from __future__ import annotations

from core.audit import EventType
from core.auth import Permission
from core.dataset_versions import DatasetVersion
from core.feedback import review_feedback
from core.preparation import Preparation
from core.services.datasets import save_dataset
from core.services.studio import Caller, Studio
from core.split import SplitPlan


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
