"""Who did what and when: audit events and the log of predictions served."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, Callable, Iterable

import pandas as pd
from sqlalchemy import String, cast, insert, or_, select

from core.accounts.auth import Actor
from core.presentation.display import when
from core.platform.store import Store, events, utc_now

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
    RUN_DELETED = "run_deleted"
    PUBLISHED = "published"
    RESTORED = "restored"
    CLASSIFIED_TEXT = "classified_text"
    CLASSIFIED_FILE = "classified_file"
    FEEDBACK_GIVEN = "feedback_given"
    FEEDBACK_REVIEWED = "feedback_reviewed"
    PAGE_ERROR = "page_error"
    TOKEN_CREATED = "token_created"
    TOKEN_REVOKED = "token_revoked"
    LABELS_CHECKED = "labels_checked"
    QUEUE_LABELLED = "queue_labelled"
    FILE_EVALUATED = "file_evaluated"
    TOPICS_DISCOVERED = "topics_discovered"
    TOPICS_REQUESTED = "topics_requested"
    LABELS_GIVEN = "labels_given"
    LABELS_DESCRIBED = "labels_described"
    LABEL_ADDED = "label_added"
    FILE_JOB_STARTED = "file_job_started"
    FILE_JOB_CANCELLED = "file_job_cancelled"


def record_event(store: Store, event_type: EventType, actor: Actor | None = None, session_id: str | None = None,
                 username: str | None = None, **details: Any) -> None:
    """Append one event; ``username`` names the subject when there is no actor (e.g. a failed sign-in)."""
    with store.appending() as connection:
        connection.execute(insert(events).values(
            time=utc_now(), username=actor.username if actor else username, role=actor.role.value if actor else None,
            session_id=session_id, event_type=EventType(event_type).value, details=details))


def query_events(store: Store, username: str | None = None,
                 event_types: Iterable[str] | None = None, since: datetime | None = None,
                 until: datetime | None = None, contains: str | None = None, session: str | None = None,
                 limit: int = 5000) -> pd.DataFrame:
    """Events matching every given filter, newest first; ``contains`` searches user, type and details.

    Every filter is applied in the database (bound parameters), before the limit. (Who may read the
    logs is checked by the use case: core.services.logs.)
    """
    frame = _select_events(store, username, event_types, since, until, contains, session, limit)
    frame["details"] = [json.dumps(d, ensure_ascii=False, sort_keys=True) if d else "" for d in frame["details"]]
    return frame


def _select_events(store: Store, username: str | None = None, event_types: Iterable[str] | None = None,
                   since: datetime | None = None, until: datetime | None = None, contains: str | None = None,
                   session: str | None = None, limit: int = 5000) -> pd.DataFrame:
    statement = select(events).order_by(events.c.id.desc()).limit(limit)
    if username:
        statement = statement.where(events.c.username == username)
    if event_types:
        statement = statement.where(events.c.event_type.in_(list(event_types)))
    if since is not None:
        statement = statement.where(events.c.time >= since)
    if until is not None:
        statement = statement.where(events.c.time <= until)
    if session:
        statement = statement.where(events.c.session_id == session)
    if contains:  # the text as typed: % and _ are characters here, not wildcards
        statement = statement.where(or_(events.c.username.icontains(contains, autoescape=True),
                                        events.c.event_type.icontains(contains, autoescape=True),
                                        cast(events.c.details, String).icontains(contains, autoescape=True)))
    return pd.DataFrame(store.rows(statement),
                        columns=["id", "time", "username", "role", "session_id", "event_type", "details"])


#: Each event in words, as the session log shows it.
EVENT_WORDS = {
    EventType.SIGN_IN: "signed in", EventType.SIGN_IN_FAILED: "sign-in refused", EventType.LOCKOUT: "account locked",
    EventType.SIGN_OUT: "signed out", EventType.SESSION_EXPIRED: "session expired",
    EventType.ACCOUNT_CREATED: "created an account", EventType.ACCOUNT_CHANGED: "changed an account",
    EventType.DATASET_UPLOADED: "uploaded a file", EventType.DATASET_SAVED: "saved a dataset version",
    EventType.DATASET_DELETED: "deleted a dataset version", EventType.TRAINING_STARTED: "started training",
    EventType.TRAINING_FINISHED: "training finished", EventType.TRAINING_CANCELLED: "training cancelled",
    EventType.TRAINING_FAILED: "training failed", EventType.RUN_DELETED: "deleted a run",
    EventType.PUBLISHED: "published a model",
    EventType.RESTORED: "restored the previous model", EventType.CLASSIFIED_TEXT: "classified a text",
    EventType.CLASSIFIED_FILE: "classified a file", EventType.FEEDBACK_GIVEN: "gave feedback",
    EventType.FEEDBACK_REVIEWED: "reviewed feedback", EventType.PAGE_ERROR: "a page failed",
    EventType.TOKEN_CREATED: "created an API token", EventType.TOKEN_REVOKED: "revoked an API token",
    EventType.LABELS_CHECKED: "checked labels", EventType.QUEUE_LABELLED: "labelled a queued text",
    EventType.FILE_EVALUATED: "evaluated a run on a file", EventType.TOPICS_DISCOVERED: "discovered topics",
    EventType.TOPICS_REQUESTED: "asked for topics", EventType.LABELS_GIVEN: "labelled texts from the queue",
    EventType.LABELS_DESCRIBED: "described labels", EventType.LABEL_ADDED: "added a label while labelling",
    EventType.FILE_JOB_STARTED: "sent a file to classify in the background",
    EventType.FILE_JOB_CANCELLED: "cancelled a file being classified",
}


#: Details that hold a run id: shown by the run's name.
RUN_DETAILS = frozenset({"run", "replaced", "retry_of", "retried_as"})
#: What an empty detail means where "none" would not say it.
NO_VALUE_WORDS = {"replaced": "nothing (the first model published)", "test_macro_f1": "no test split",
                  "cancelled_by": "nobody"}


def _describe(details: str, run_name: Callable[[str], str]) -> str:
    """Stored details (JSON text) as "key: value · …" in words: runs by name, yes/no, figures rounded."""
    if not details:
        return ""
    return " · ".join(f"{key.replace('_', ' ')}: {_value_in_words(key, value, run_name)}"
                      for key, value in json.loads(details).items())


def _value_in_words(key: str, value: Any, run_name: Callable[[str], str]) -> str:
    """One detail as people read it (never "None", "True" or a 17-digit float)."""
    if key in RUN_DETAILS and isinstance(value, str):
        return run_name(value)
    if value is None:
        return NO_VALUE_WORDS.get(key, "none")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".")
    if isinstance(value, list):
        return ", ".join(str(item) for item in value) or "none"
    if isinstance(value, dict):
        return "; ".join(f"{k.replace('_', ' ')} {_value_in_words(k, v, run_name)}" for k, v in value.items())
    return str(value)


def readable_events(frame: pd.DataFrame, run_name: Callable[[str], str] = str) -> pd.DataFrame:
    """A query_events table as people read it: one time format, who, role, what happened in words, details
    as text, and the session (ids of runs replaced by their names)."""
    return pd.DataFrame({
        "time": [when(t) for t in frame["time"]],
        "who": frame["username"].fillna("—").tolist(),
        "role": frame["role"].fillna("—").tolist(),
        "what": [EVENT_WORDS.get(EventType(e), e) if e in EventType._value2member_map_ else e
                 for e in frame["event_type"]],
        "details": [_describe(d, run_name) for d in frame["details"]],
        "session": frame["session_id"].fillna("—").tolist(),
    })


def has_event(store: Store, session_id: str, event_type: EventType) -> bool:
    """Whether this session already recorded such an event (a reload must not log a second sign-in)."""
    statement = select(events.c.id).where(events.c.session_id == session_id,
                                          events.c.event_type == EventType(event_type).value).limit(1)
    return bool(store.rows(statement))


def session_timeline(store: Store, session: str) -> pd.DataFrame:
    """One browser session's events in the order they happened."""
    return query_events(store, session=session).iloc[::-1].reset_index(drop=True)


#: The events every signed-in person may see on Home, and how a sentence names them.
MILESTONES = {EventType.DATASET_SAVED: "saved dataset", EventType.TRAINING_FINISHED: "finished training",
              EventType.PUBLISHED: "published", EventType.RESTORED: "restored"}


@dataclass(frozen=True)
class Milestone:
    """One line of the workspace's recent activity: who did what to which dataset or run."""

    time: datetime
    username: str
    action: str
    subject: str


def recent_milestones(store: Store, limit: int = 6, run_name: Callable[[str], str] = str) -> list[Milestone]:
    """The latest datasets saved, runs finished and models published, newest first (no personal details);
    ``run_name`` turns a run id into the name people read."""
    frame = _select_events(store, event_types=[e.value for e in MILESTONES], limit=limit)
    milestones = []
    for row in frame.itertuples():
        details = row.details or {}
        subject = run_name(details["run"]) if details.get("run") else (details.get("dataset") or "")
        milestones.append(Milestone(row.time, row.username or "system", MILESTONES[EventType(row.event_type)], subject))
    return milestones


