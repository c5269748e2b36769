"""The workspace at a glance, for Home: datasets, runs, what is published and where the journey goes on."""

from __future__ import annotations

from core.serving.overview import WorkspaceSummary, summarise_workspace
from core.services.studio import Caller, Studio


def workspace_summary(studio: Studio, caller: Caller) -> WorkspaceSummary:
    """What Home shows a signed-in person (counts, the latest version, the published run, the next step)."""
    caller.require_signed_in()
    return summarise_workspace(studio.workspace)


__all__ = ["WorkspaceSummary", "workspace_summary"]
