"""Who did what and when: audit events and the log of predictions served."""

from __future__ import annotations

import logging
from enum import Enum
from typing import Any, Iterable

from sqlalchemy import insert

from core.auth import Actor
from core.predict import Prediction
from core.store import Store, events, predictions, utc_now

log = logging.getLogger(__name__)


class EventType(str, Enum):
    SIGN_IN = "sign_in"
    SIGN_IN_FAILED = "sign_in_failed"
    LOCKOUT = "lockout"
    SIGN_OUT = "sign_out"
    SESSION_EXPIRED = "session_expired"
    ACCOUNT_CREATED = "account_created"
    ACCOUNT_CHANGED = "account_changed"
    DATASET_UPLOADED = "dataset_uploaded"
    DATASET_SAVED = "dataset_saved"
    DATASET_DELETED = "dataset_deleted"
    TRAINING_STARTED = "training_started"
    TRAINING_FINISHED = "training_finished"
    TRAINING_CANCELLED = "training_cancelled"
    TRAINING_FAILED = "training_failed"
    PUBLISHED = "published"
    RESTORED = "restored"
    CLASSIFIED_TEXT = "classified_text"
    CLASSIFIED_FILE = "classified_file"
    FEEDBACK_GIVEN = "feedback_given"
    FEEDBACK_REVIEWED = "feedback_reviewed"
    PAGE_ERROR = "page_error"


def record_event(store: Store, event_type: EventType, actor: Actor | None = None, session_id: str | None = None,
                 username: str | None = None, **details: Any) -> None:
    """Append one event; ``username`` names the subject when there is no actor (e.g. a failed sign-in)."""
    with store.writing() as connection:
        connection.execute(insert(events).values(
            time=utc_now(), username=actor.username if actor else username, role=actor.role.value if actor else None,
            session_id=session_id, event_type=EventType(event_type).value, details=details))


def record_predictions(store: Store, actor: Actor, session_id: str | None, run_id: str,
                       results: Iterable[tuple[Any, Prediction]], source: str, keep_text: bool) -> int:
    """Log served predictions (text only when ``keep_text``); returns how many rows were written."""
    now = utc_now()
    rows = [{"time": now, "username": actor.username, "session_id": session_id, "run_id": run_id,
             "label": p.label, "score": p.score, "needs_review": p.needs_review, "status": p.status, "source": source,
             "text": text if keep_text and isinstance(text, str) else None} for text, p in results]
    if rows:
        with store.writing() as connection:
            connection.execute(insert(predictions), rows)
    return len(rows)
