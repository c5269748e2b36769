"""How times read wherever a person sees them: one format, in UTC."""

from __future__ import annotations

from datetime import datetime, timezone

#: Every time shown in tables, captions and exports reads like this (UTC, sortable).
TIME_FORMAT = "%Y-%m-%d %H:%M"


def when(value: str | datetime | None) -> str:
    """A stored time (ISO text or datetime, naive meaning UTC) as people read it; an em dash when unknown."""
    if value is None or value == "":
        return "—"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime(TIME_FORMAT)
