"""Accounts and sign-in sessions: the first admin, creating and changing accounts, signing in and out.

The password form itself belongs to the page (streamlit-authenticator draws it and keeps the cookie);
what is decided and recorded lives here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.audit import EventType, has_event, record_event
from core.auth import Account, Accounts, Permission, Role, SignInAttempt
from core.services.studio import Caller, Studio
from core.sessions import Sessions, expiry as session_expiry


def accounts(studio: Studio) -> Accounts:
    """The accounts of the studio's database (reads need no role: the sign-in form reads them)."""
    return Accounts(studio.store, studio.config.auth)


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
    from core.auth import AuthError

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


def record_failed_sign_in(studio: Studio, session_id: str | None, attempt: SignInAttempt | None) -> None:
    """A wrong password on record (and the lock it set); the name only when it is an account's."""
    if attempt is None or attempt.account is None:
        studio.audit(Caller(None, session_id), EventType.SIGN_IN_FAILED, refused=True)
        return
    record_event(studio.store, EventType.SIGN_IN_FAILED, username=attempt.username, session_id=session_id)
    if attempt.locked_now:
        record_event(studio.store, EventType.LOCKOUT, username=attempt.username, session_id=session_id,
                     until=attempt.account.locked_until.isoformat())


def begin_session(studio: Studio, session_id: str, username: str, cookie_expires: float) -> None:
    """A new sign-in's session row: it ends with its cookie, or earlier when someone ends it."""
    Sessions(studio.store).start(session_id, username, session_expiry(cookie_expires))


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
