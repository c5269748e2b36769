"""Server-side sign-in sessions: the cookie only names one; the database says whether it still counts.

Signing out, a password reset, a role change and disabling an account end the session rows, so a copied
cookie stops working at once; a session lasts ``auth.session_hours`` from its sign-in, however many tabs
or reloads follow.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import insert, select, update

from core.platform.store import Store, as_utc, sessions, utc_now


class Sessions:
    """The session rows of one store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def start(self, session_id: str, username: str, expires_at: datetime) -> None:
        """Record a new sign-in (the same id again — a rerun of the same sign-in — changes nothing)."""
        with self.store.writing() as connection:
            if connection.execute(select(sessions.c.id).where(sessions.c.id == session_id)).first() is None:
                connection.execute(insert(sessions).values(id=session_id, username=username, started_at=utc_now(),
                                                           expires_at=expires_at))

    def refusal(self, session_id: str | None, username: str) -> str | None:
        """Why this session no longer counts (in words), or None while it does."""
        rows = self.store.rows(select(sessions).where(sessions.c.id == session_id)) if session_id else []
        if not rows or rows[0]["username"] != username:
            return "Please sign in again."
        row = rows[0]
        if row["ended_why"] == "signed out":
            return "You signed out of this session (maybe in another tab); please sign in again."
        if row["ended_at"] is not None:
            return f"This session was ended ({row['ended_why']}); please sign in again."
        if utc_now() >= as_utc(row["expires_at"]):
            return "Your session expired; please sign in again."
        return None

    def end(self, session_id: str | None, why: str) -> None:
        """End one session (signing out)."""
        if session_id:
            self._end(sessions.c.id == session_id, why)

    def end_all(self, username: str, why: str) -> int:
        """End every open session of an account (password reset, role change, disabled); how many."""
        return self._end(sessions.c.username == username, why)

    def _end(self, which, why: str) -> int:
        with self.store.writing() as connection:
            result = connection.execute(update(sessions).where(which, sessions.c.ended_at.is_(None))
                                        .values(ended_at=utc_now(), ended_why=why))
        return int(result.rowcount)


def expiry(cookie_expires: float) -> datetime:
    """The session's end: the sign-in cookie's own expiry (set at sign-in, not extended by reloads)."""
    return datetime.fromtimestamp(cookie_expires, tz=timezone.utc)
