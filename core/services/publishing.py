"""Choosing the model everyone classifies with: publishing a run, restoring the one before."""

from __future__ import annotations

from huggingface_hub import ModelCard

from core.audit import EventType
from core.auth import Permission
from core.model_card import read_model_card
from core.publishing import Publication, current_publication, publish, restore_previous
from core.runs import RunError
from core.services.studio import Caller, Studio
from core.training import finished_run


def publish_run(studio: Studio, caller: Caller, run_id: str) -> Publication:
    """Make a finished run the model used for classification from the next prediction on."""
    publication = publish(studio.workspace, run_id, caller.require(Permission.PUBLISH))
    studio.audit(caller, EventType.PUBLISHED, run=run_id, replaced=publication.replaced)
    return publication


def restore_run(studio: Studio, caller: Caller) -> Publication:
    """Publish again the run the current one replaced."""
    restored = restore_previous(studio.workspace, caller.require(Permission.PUBLISH))
    studio.audit(caller, EventType.RESTORED, run=restored.run_id, replaced=restored.replaced)
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
