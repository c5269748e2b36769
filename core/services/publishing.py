"""Choosing the model everyone classifies with: publishing a run, restoring the one before."""

from __future__ import annotations

from core.audit import EventType
from core.auth import Permission
from core.publishing import Publication, publish, restore_previous
from core.services.studio import Caller, Studio


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
