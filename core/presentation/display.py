"""How times and counts read wherever a person sees them: one format, in UTC."""

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


def progress_count(done: int, total: int, unit: str) -> str:
    """A run's count in the phase under way: "step 12/1,500", "fold 2/5" while cross-validating, or "3,000 of 9,000
    texts" while texts are read (each phase counts its own, so the numbers start again when the next phase does)."""
    return f"{done:,} of {total:,} texts" if unit == "text" else f"{unit} {done:,}/{total:,}"


def rate(part: int, whole: int, minimum: int) -> str:
    """A share with the counts it comes from, "80% (16 of 20)"; the counts alone below ``minimum`` cases, where
    a percentage would say more than the data ("0 of 1", not "0%"); an em dash with no case at all."""
    if whole == 0:
        return "—"
    counts = f"{part:,} of {whole:,}"
    return counts if whole < minimum else f"{part / whole:.0%} ({counts})"
