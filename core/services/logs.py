"""Reading what happened: the session log, served predictions and users' verdicts (admins), and a person's
own latest predictions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd

from core.audit import query_events, session_timeline
from core.auth import Permission
from core.monitoring import feedback_log, own_predictions, prediction_log
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
