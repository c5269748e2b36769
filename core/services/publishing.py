"""Choosing the model everyone classifies with: what is published and was before, how a candidate compares,
publishing a run, restoring the one before, the published model's card."""

from __future__ import annotations

from huggingface_hub import ModelCard

from core.accounts.audit import EventType
from core.accounts.auth import Permission
from core.training.model_card import read_model_card
from core.serving.publishing import (
    Publication, PublishCheck, PublishError, compare_with_published, current_publication, publication_history,
    publish, published_run as published_record, restore_previous, run_deletion_warning,
)
from core.serving.runtime import check_here
from core.training.runs import RunError, RunRecord, load_record
from core.services.studio import Caller, Studio
from core.training.finished import finished_run


def publication(studio: Studio, caller: Caller) -> Publication | None:
    """What is published now (run, by whom, when, what it replaced), or None."""
    caller.require_any(Permission.EVALUATE, Permission.VIEW_LOGS, Permission.CLASSIFY)
    return current_publication(studio.workspace)


def publishing_history(studio: Studio, caller: Caller) -> list[Publication]:
    """Every publication and restore, oldest first."""
    caller.require_any(Permission.EVALUATE, Permission.VIEW_LOGS)
    return publication_history(studio.workspace)


def published_run(studio: Studio, caller: Caller) -> RunRecord | None:
    """The published run's record (its data, labels, test figures), or None."""
    caller.require_any(Permission.EVALUATE, Permission.VIEW_LOGS, Permission.REVIEW_FEEDBACK)
    return published_record(studio.workspace)


def publish_check(studio: Studio, caller: Caller, candidate: RunRecord) -> PublishCheck:
    """How a candidate compares with the published model, in words, and whether it scores worse."""
    caller.require(Permission.PUBLISH)
    return compare_with_published(studio.workspace, candidate)


def deletion_warning(studio: Studio, caller: Caller, run_id: str) -> str | None:
    """What deleting a run would change for publishing, in words (the model a restore goes back to), or None."""
    caller.require(Permission.TRAIN)
    return run_deletion_warning(studio.workspace, run_id)


def publish_run(studio: Studio, caller: Caller, run_id: str) -> Publication:
    """Make a finished run the model used for classification from the next prediction on."""
    publication = publish(studio.workspace, run_id, caller.require(Permission.PUBLISH))
    studio.audit(caller, EventType.PUBLISHED, run=run_id, replaced=publication.replaced)
    check_here(studio.workspace, load_record(studio.workspace, run_id), studio.config)  # timed on another CPU: here too
    return publication


def restore_run(studio: Studio, caller: Caller) -> Publication:
    """Publish again the run the current one replaced."""
    restored = restore_previous(studio.workspace, caller.require(Permission.PUBLISH))
    studio.audit(caller, EventType.RESTORED, run=restored.run_id, replaced=restored.replaced)
    check_here(studio.workspace, load_record(studio.workspace, restored.run_id), studio.config)
    return restored


def published_model_card(studio: Studio, caller: Caller) -> ModelCard | None:
    """The published model's card (what it is, the data that made it, its test figures, its limits), or None
    when nothing is published or its folder has no card (trained before cards existed)."""
    caller.require(Permission.EVALUATE)
    current = current_publication(studio.workspace)
    if current is None:
        return None
    try:
        _, folder = finished_run(studio.workspace, current.run_id)
    except RunError:  # its run was deleted since
        return None
    return read_model_card(folder)


__all__ = ["Publication", "PublishCheck", "PublishError", "deletion_warning", "publication", "publish_check",
           "publish_run", "published_model_card", "published_run", "publishing_history", "restore_run"]
