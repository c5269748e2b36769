"""Accounts and sign-in sessions: the first admin, creating and changing accounts, signing in and out.

The page draws the password form and streamlit-authenticator keeps the sign-in cookie; whether a sign-in
counts, which session it starts and what is recorded are decided here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from core.accounts.audit import EventType, has_event, record_event
from core.accounts.auth import (
    DEFAULT_ROLE, ROLE_MEANINGS, ROLE_PERMISSIONS, Account, Accounts, Actor, AuthError, Permission, PermissionDenied,
    Role, SignInAttempt, cookie_key, sign_in_id,
)
from core.services.studio import Caller, Studio
from core.accounts.sessions import Sessions, expiry as session_expiry


def accounts(studio: Studio) -> Accounts:
    """The accounts of the studio's database (reads need no role: the sign-in form reads them)."""
    return Accounts(studio.store, studio.config.auth)


def cookie_signing_key(studio: Studio, configured: str | None) -> str:
    """The key that signs sign-in cookies: the configured one, else this workspace's own (made once);
    AuthError for a placeholder or short key."""
    return cookie_key(studio.workspace.root, configured)


def create_first_admin(studio: Studio, caller: Caller, username: str, name: str, email: str,
                       password: str) -> Account:
    """The first account of a new studio (refused once any account exists): no role is needed, as nobody
    can sign in before it exists; the event is the new admin's."""
    account = accounts(studio).create_first_admin(username, name, email, password)
    studio.audit(Caller(account.actor, caller.session_id, caller.channel), EventType.ACCOUNT_CREATED, created=account.username,
                 role=account.role.value, first_admin=True)
    return account


def create_account(studio: Studio, caller: Caller, username: str, name: str, email: str, password: str,
                   role: Role) -> Account:
    """A new account, created by an admin (or from the command line)."""
    account = accounts(studio).create(caller.require(Permission.MANAGE_USERS), username, name, email, password,
                                      role)
    studio.audit(caller, EventType.ACCOUNT_CREATED, created=account.username, role=account.role.value)
    return account


@dataclass
class AccountChange:
    """What a change did, in order, and the refusal that stopped the rest (None when all went through)."""

    done: list[str] = field(default_factory=list)
    refusal: str | None = None


def change_account(studio: Studio, caller: Caller, username: str, role: Role | None = None,
                   password: str | None = None, disabled: bool | None = None) -> AccountChange:
    """Change the role, the password and/or the disabled flag, in that order; each of them ends the account's
    sessions. A refusal (the last admin, a weak password) stops there and says what was done before it."""
    actor = caller.require(Permission.MANAGE_USERS)
    book, change = accounts(studio), AccountChange()
    current = book.get(username)
    try:
        if role is not None and current is not None and role is not current.role:
            book.change_role(username, role)
            change.done.append(f"role {role.value}")
        if password:
            book.reset_password(username, password)
            change.done.append("password reset")
        if disabled is not None and current is not None and disabled != current.disabled:
            book.set_disabled(actor, username, disabled)
            change.done.append("disabled" if disabled else "enabled")
    except AuthError as refusal:
        change.refusal = str(refusal)
    if change.done:
        studio.audit(caller, EventType.ACCOUNT_CHANGED, account=username, changes=change.done)
    return change


@dataclass(frozen=True)
class SignedIn:
    """A sign-in that counts: the account, its new session's id and when that session (and its cookie) ends."""

    account: Account
    session_id: str
    expires: float  # seconds since the epoch, as the sign-in cookie carries it


@dataclass(frozen=True)
class PasswordSignIn:
    """How one password sign-in went: ``signed_in`` holds the new session when the password was right."""

    attempt: SignInAttempt
    signed_in: SignedIn | None = None


def sign_in_with_password(studio: Studio, caller: Caller, username: str, password: str,
                          now: float | None = None) -> PasswordSignIn:
    """One password sign-in, decided by the password alone: when it is right, a new session row of *this*
    account starts before anything else happens, whatever session the browser held before (another
    account's, a stale cookie's); when it is wrong, the attempt is counted and recorded once."""
    attempt = accounts(studio).attempt_sign_in(username, password)
    if attempt.outcome != "signed_in":
        _record_failed_sign_in(studio, caller.session_id, attempt)
        return PasswordSignIn(attempt)
    return PasswordSignIn(attempt, start_session(studio, attempt.account, now))


def start_session(studio: Studio, account: Account, now: float | None = None) -> SignedIn:
    """A new sign-in's session row, lasting ``auth.session_hours``; its id is the one the sign-in cookie
    gives every reload of this visit (core.accounts.auth.sign_in_id)."""
    expires = (time.time() if now is None else now) + studio.config.auth.session_hours * 3600
    session_id = sign_in_id(account.username, expires)
    Sessions(studio.store).start(session_id, account.username, session_expiry(expires))
    return SignedIn(account, session_id, expires)


def resume_from_cookie(studio: Studio, username: str, cookie_expires: float) -> SignedIn | str:
    """A sign-in cookie brought back by a browser: the session it names when that session still counts,
    else why not (the account disabled or gone, the session signed out or ended): such a cookie is
    dropped, never adopted."""
    account = accounts(studio).get(username)
    if account is None or account.disabled:
        return "That account can no longer sign in here. Sign in with another account."
    session_id = sign_in_id(account.username, cookie_expires)
    refusal = Sessions(studio.store).refusal(session_id, account.username)
    return refusal if refusal is not None else SignedIn(account, session_id, cookie_expires)


def _record_failed_sign_in(studio: Studio, session_id: str | None, attempt: SignInAttempt) -> None:
    """A wrong password on record (and the lock it set); the name only when it is an account's."""
    if attempt.account is None:
        studio.audit(Caller(None, session_id), EventType.SIGN_IN_FAILED, refused=True)
        return
    record_event(studio.store, EventType.SIGN_IN_FAILED, username=attempt.username, session_id=session_id)
    if attempt.locked_now:
        record_event(studio.store, EventType.LOCKOUT, username=attempt.username, session_id=session_id,
                     until=attempt.account.locked_until.isoformat())


def session_refusal(studio: Studio, session_id: str | None, username: str, expired: bool) -> str | None:
    """Why this sign-in no longer counts (disabled, expired, signed out elsewhere, reset…), or None."""
    account = accounts(studio).get(username)
    if account is None or account.disabled:
        return "Your account was disabled."
    if expired:
        studio.audit(Caller(account.actor, session_id), EventType.SESSION_EXPIRED)
        return "Your session expired; please sign in again."
    return Sessions(studio.store).refusal(session_id, account.username)


def signed_in(studio: Studio, caller: Caller) -> None:
    """The first page run of a sign-in (password or cookie): noted on the account and in the log, once."""
    accounts(studio).record_sign_in(caller.actor.username)
    if not has_event(studio.store, caller.session_id, EventType.SIGN_IN):  # a reload is no new sign-in
        studio.audit(caller, EventType.SIGN_IN)


def sign_out(studio: Studio, caller: Caller) -> None:
    """End this session everywhere: a copy of its cookie no longer signs in."""
    studio.audit(caller, EventType.SIGN_OUT)
    Sessions(studio.store).end(caller.session_id, "signed out")


def report_page_error(studio: Studio, caller: Caller, page: str, error: BaseException) -> None:
    """A page crashed: its name and the error's kind go to the log (the traceback to the system log)."""
    studio.audit(caller, EventType.PAGE_ERROR, page=page, error=type(error).__name__)


#: The words of accounts and roles that pages and the command line use with these use cases.
__all__ = [
    "Account", "AccountChange", "Actor", "AuthError", "DEFAULT_ROLE", "PasswordSignIn", "Permission",
    "PermissionDenied", "ROLE_MEANINGS", "ROLE_PERMISSIONS", "Role", "SignedIn", "accounts", "change_account",
    "cookie_signing_key", "create_account", "create_first_admin", "report_page_error", "resume_from_cookie",
    "session_refusal", "sign_in_with_password", "sign_out", "signed_in", "start_session",
]
