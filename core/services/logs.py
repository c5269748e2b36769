"""Reading what happened: the session log, served predictions and users' verdicts (admins), a person's own
latest predictions, and the workspace's recent milestones. Also names the pure figures monitoring draws from
those tables (volume, review share, label drift, agreement) and the log in words."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd

from typing import Callable

from core.accounts.audit import EventType, Milestone, query_events, readable_events, recent_milestones, session_timeline
from core.accounts.auth import Permission
from core.serving.monitoring import (
    agreement_over_time, default_period, feedback_agreement, feedback_log, label_drift, model_usage, own_predictions,
    tag_rates_over_time,
    prediction_log, review_share_over_time, volume_over_time, with_model_names,
)
from core.services.studio import Caller, Studio


def session_log(studio: Studio, caller: Caller, **filters: Any) -> pd.DataFrame:
    """Events matching every filter (username, event_types, since, until, contains, session, limit), newest
    first."""
    caller.require(Permission.VIEW_LOGS)
    return query_events(studio.store, **filters)


def session_events(studio: Studio, caller: Caller, session: str) -> pd.DataFrame:
    """One session's events in the order they happened."""
    caller.require(Permission.VIEW_LOGS)
    return session_timeline(studio.store, session)


def served_predictions(studio: Studio, caller: Caller, since: datetime | None = None) -> pd.DataFrame:
    """Every served prediction (without texts), oldest first: what monitoring is made of."""
    caller.require(Permission.VIEW_LOGS)
    return prediction_log(studio.store, since)


def verdicts(studio: Studio, caller: Caller) -> pd.DataFrame:
    """Every verdict users gave on a prediction, oldest first."""
    caller.require(Permission.VIEW_LOGS)
    return feedback_log(studio.store)


def my_predictions(studio: Studio, caller: Caller, limit: int = 10) -> pd.DataFrame:
    """The caller's own latest predictions (Home of people who classify)."""
    actor = caller.require(Permission.CLASSIFY)
    return own_predictions(studio.store, actor.username, limit)


def recent_activity(studio: Studio, caller: Caller, run_name: Callable[[str], str] = str) -> list[Milestone]:
    """The latest datasets saved, runs finished and models published (no personal details: every signed-in
    person sees them on Home); ``run_name`` turns a run id into its name."""
    caller.require_signed_in()
    return recent_milestones(studio.store, run_name=run_name)


__all__ = [
    "EventType", "Milestone", "agreement_over_time", "default_period", "feedback_agreement", "label_drift",
    "tag_rates_over_time",
    "model_usage", "my_predictions", "readable_events", "recent_activity", "review_share_over_time",
    "served_predictions", "session_events", "session_log", "verdicts", "volume_over_time", "with_model_names",
]
