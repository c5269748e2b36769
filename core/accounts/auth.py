"""Accounts, roles and what each role may do.

Passwords are stored as bcrypt hashes (the format streamlit-authenticator
checks). Every function that changes accounts takes the acting user and checks
their role; pages check roles too, but the rule lives here.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Any

import bcrypt
from zxcvbn import zxcvbn
from sqlalchemy import case, func, insert, select, update

from core.platform.config import AuthConfig
from core.accounts.sessions import Sessions
from core.platform.store import Store, as_utc, users, utc_now


class Role(str, Enum):
    ADMIN = "admin"
    ANALYST = "analyst"
    USER = "user"


class Permission(str, Enum):
    CLASSIFY = "classify"
    GIVE_FEEDBACK = "give feedback"
    MANAGE_DATA = "manage data"
    TRAIN = "train models"
    EVALUATE = "evaluate models"
    PUBLISH = "publish models"
    MANAGE_USERS = "manage users"
    VIEW_LOGS = "view logs"
    REVIEW_FEEDBACK = "review feedback"
    LABEL_QUEUE = "label the review queue"


_USER = {Permission.CLASSIFY, Permission.GIVE_FEEDBACK}
_ANALYST = _USER | {Permission.MANAGE_DATA, Permission.TRAIN, Permission.EVALUATE, Permission.PUBLISH,
                    Permission.LABEL_QUEUE}
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.USER: frozenset(_USER),
    Role.ANALYST: frozenset(_ANALYST),
    Role.ADMIN: frozenset(Permission),
}
#: What each role may do, in words (account forms and confirmations); the least privileged first.
ROLE_MEANINGS: dict[Role, str] = {
    Role.USER: "classifies feedback and corrects predictions, nothing else",
    Role.ANALYST: "also prepares data, trains, evaluates and publishes models",
    Role.ADMIN: "may do everything, including accounts and logs",
}
#: Where every form that grants a role starts: the least privilege.
DEFAULT_ROLE = Role.USER
USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.@-]{1,63}$")
#: Keys published in examples and documentation: signing cookies with them would let anyone forge a session.
PLACEHOLDER_KEYS = frozenset({"", "some_key", "some_signature_key", "random_signature_key", "abcdef", "changeme",
                              "change-me", "secret", "key", "cookie_key", "your-secret-key", "xxx"})
MIN_COOKIE_KEY_LENGTH = 32
COOKIE_KEY_FILE = Path("secrets") / "cookie_key"


class AuthError(ValueError):
    """A refused account operation or sign-in, with the reason in words."""


class PermissionDenied(AuthError):
    """The acting user's role does not allow the operation."""


@dataclass(frozen=True)
class Actor:
    """Who is doing something: a signed-in account, or the command line (run by the machine's owner)."""

    username: str
    role: Role

    def can(self, permission: Permission) -> bool:
        return permission in ROLE_PERMISSIONS[self.role]


def command_line_actor() -> Actor:
    """Whoever has a shell on the server already owns the workspace; the CLI acts with admin rights."""
    return Actor(os.environ.get("USER") or "command-line", Role.ADMIN)


def require(actor: Actor | None, permission: Permission) -> Actor:
    """Raise PermissionDenied unless ``actor`` may do ``permission``."""
    if actor is None:
        raise PermissionDenied(f"sign in to {permission.value}")
    if not actor.can(permission):
        raise PermissionDenied(f"{actor.username} ({actor.role.value}) may not {permission.value}")
    return actor


#: bcrypt reads at most this many bytes of a password (bcrypt 5 refuses longer ones rather than cut them).
MAX_PASSWORD_BYTES = 72



@functools.cache
def unusable_hash(rounds: int = 12) -> str:
    """A real bcrypt hash of a random secret nobody knows: checked against when there is no account to check,
    so an unknown, locked or disabled name costs the same bcrypt work as a real one."""
    return hash_password(secrets.token_urlsafe(24), rounds)


def hash_password(password: str, rounds: int = 12) -> str:
    """A bcrypt hash of ``rounds`` work factor (``auth.password_hash_rounds``)."""
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(rounds)).decode("ascii")


def verify_password(password: str, password_hash: str) -> bool:
    try:
        return bcrypt.checkpw(password.encode("utf-8"), password_hash.encode("ascii"))
    except ValueError:
        return False


def sign_in_id(username: str, cookie_expires: float) -> str:
    """One id per browser sign-in, the same for every reload its cookie restores (the cookie carries the
    name and its expiry), so the session log keeps one visit together."""
    return hashlib.sha256(f"{username}\0{cookie_expires!r}".encode()).hexdigest()[:16]


def cookie_key(workspace_root: Path, configured: str | None = None) -> str:
    """The key that signs sign-in cookies: from secrets if configured, else generated once per workspace.

    A known placeholder or a short key is refused: with it anyone could forge a session cookie.
    """
    if configured is not None:
        key = configured.strip()
        source = "the configured cookie key"
    else:
        path = workspace_root / COOKIE_KEY_FILE
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_name(f".{path.name}.{os.getpid()}")
            temporary.write_text(secrets.token_urlsafe(48), encoding="ascii")
            os.chmod(temporary, 0o600)
            try:
                os.link(temporary, path)  # atomic, and never overwrites a key another process just wrote
            except FileExistsError:
                pass
            finally:
                temporary.unlink()
        key = path.read_text(encoding="ascii").strip()
        source = str(path)
    if key.lower() in PLACEHOLDER_KEYS or len(key) < MIN_COOKIE_KEY_LENGTH:
        raise AuthError(f"{source} is a placeholder or shorter than {MIN_COOKIE_KEY_LENGTH} characters; "
                        "set a long random key (or delete the file to have one generated)")
    return key


@dataclass(frozen=True)
class Account:
    username: str
    name: str
    email: str
    role: Role
    disabled: bool
    failed_sign_ins: int
    locked_until: datetime | None
    created_at: datetime
    created_by: str | None

    @classmethod
    def from_row(cls, row: Any) -> "Account":
        return cls(row["username"], row["name"], row["email"], Role(row["role"]), bool(row["disabled"]),
                   int(row["failed_sign_ins"]), as_utc(row["locked_until"]), as_utc(row["created_at"]),
                   row["created_by"])

    def locked(self, now: datetime | None = None) -> bool:
        return self.locked_until is not None and (now or utc_now()) < self.locked_until

    @property
    def actor(self) -> Actor:
        return Actor(self.username, self.role)


@dataclass(frozen=True)
class SignInAttempt:
    """How one password sign-in went: ``signed_in``, ``wrong`` (counted) or ``refused`` (locked, disabled or
    unknown: the password was checked against nothing); ``locked_now`` when this attempt set the lock."""

    username: str
    outcome: str
    account: "Account | None" = None
    locked_now: bool = False


class Accounts:
    """The accounts in the store, with the rules that protect them."""

    def __init__(self, store: Store, config: AuthConfig) -> None:
        self.store, self.config = store, config

    # -- reading ---------------------------------------------------------------------------------
    def any_accounts(self) -> bool:
        return self.store.count(users) > 0

    def get(self, username: str) -> Account | None:
        rows = self.store.rows(select(users).where(users.c.username == username.strip().lower()))
        return Account.from_row(rows[0]) if rows else None

    def all(self) -> list[Account]:
        return [Account.from_row(row) for row in self.store.rows(select(users).order_by(users.c.username))]

    def _password_hash(self, username: str) -> str | None:
        rows = self.store.rows(select(users.c.password_hash).where(users.c.username == username))
        return rows[0]["password_hash"] if rows else None

    def _check_new_password(self, password: str, *personal: str) -> None:
        """Length, bcrypt's limit, no edge spaces, and not easy to guess (``personal``: the username, name)."""
        if len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
            raise AuthError(f"the password is too long: at most {MAX_PASSWORD_BYTES} bytes (72 plain letters, "
                            "fewer with accents or emoji)")
        if len(password) < self.config.min_password_length:
            raise AuthError(f"the password must have at least {self.config.min_password_length} characters")
        if password.strip() != password or not password.strip():
            raise AuthError("the password must not start or end with spaces")
        words = [word for text in personal if text for word in re.split(r"[\s@._-]+", text) if word]
        strength = zxcvbn(password, user_inputs=[text for text in personal if text] + words)
        if strength["score"] < self.config.min_password_score:
            hints = [strength["feedback"]["warning"], *strength["feedback"]["suggestions"]]
            raise AuthError("the password is too easy to guess" + (": " + " ".join(h for h in hints if h).rstrip(".")
                                                                   if any(hints) else ""))

    @staticmethod
    def _check_username(username: str) -> str:
        name = username.strip().lower()
        if not USERNAME_PATTERN.match(name):
            raise AuthError(f"username {username!r} is not allowed: use 2–64 letters, digits, '.', '_', '-' or '@', "
                            "starting with a letter or digit")
        return name

    def _admins(self, connection) -> int:
        return int(connection.execute(select(func.count()).select_from(users).where(
            users.c.role == Role.ADMIN.value, users.c.disabled.is_(False))).scalar_one())

    # -- changing ----------------------------------------------------------------------------------
    def _insert(self, connection, username: str, name: str, email: str, password_hash: str, role: Role,
                created_by: str | None) -> None:
        connection.execute(insert(users).values(
            username=username, name=name.strip() or username, email=email.strip(), role=role.value,
            password_hash=password_hash, disabled=False, failed_sign_ins=0, locked_until=None,
            created_at=utc_now(), created_by=created_by))

    def create_first_admin(self, username: str, name: str, email: str, password: str) -> Account:
        """The very first account; refused once any account exists (no default password anywhere)."""
        username = self._check_username(username)
        self._check_new_password(password, username, name, email)
        # slow: before the write transaction, not inside it
        hashed = hash_password(password, self.config.password_hash_rounds)
        with self.store.writing() as connection:  # the check and the insert in one transaction
            if connection.execute(select(func.count()).select_from(users)).scalar_one():
                raise AuthError("the first admin account already exists; sign in instead")
            self._insert(connection, username, name, email, hashed, Role.ADMIN, None)
        return self.get(username)

    def create(self, actor: Actor, username: str, name: str, email: str, password: str, role: Role) -> Account:
        """A new account, ``actor`` recorded as its creator (who may create one: core.services.accounts)."""
        username = self._check_username(username)
        self._check_new_password(password, username, name, email)
        hashed = hash_password(password, self.config.password_hash_rounds)
        with self.store.writing() as connection:
            if connection.execute(select(users.c.username).where(users.c.username == username)).first():
                raise AuthError(f"an account called {username!r} already exists")
            self._insert(connection, username, name, email, hashed, Role(role), actor.username)
        return self.get(username)

    def _update(self, username: str, **values: Any) -> None:
        with self.store.writing() as connection:
            result = connection.execute(update(users).where(users.c.username == username).values(**values))
        if result.rowcount == 0:
            raise AuthError(f"no account called {username!r}")

    def _update_keeping_an_admin(self, username: str, leaving_admin: bool, **values: Any) -> None:
        """Update an account, refusing (in the same transaction) to remove the last active admin."""
        with self.store.writing() as connection:
            row = connection.execute(select(users).where(users.c.username == username)).mappings().first()
            if row is None:
                raise AuthError(f"no account called {username!r}")
            if leaving_admin and row["role"] == Role.ADMIN.value and not row["disabled"] and self._admins(connection) <= 1:
                raise AuthError(f"{username} is the last active admin; make another admin first")
            connection.execute(update(users).where(users.c.username == username).values(**values))

    def change_role(self, username: str, role: Role) -> Account:
        """A new role (never leaving the studio without an active admin); it ends the account's sessions."""
        role = Role(role)
        self._update_keeping_an_admin(username, role is not Role.ADMIN, role=role.value)
        Sessions(self.store).end_all(username, "the role changed")
        return self.get(username)

    def set_disabled(self, actor: Actor, username: str, disabled: bool) -> Account:
        """Disable (ending its sessions) or enable an account; ``actor`` may not disable their own."""
        if disabled and actor.username == username:
            raise AuthError("you cannot disable your own account")
        self._update_keeping_an_admin(username, disabled, disabled=disabled)
        if disabled:
            Sessions(self.store).end_all(username, "the account was disabled")
        return self.get(username)

    def reset_password(self, username: str, password: str) -> Account:
        """Set a new password (it must pass the password rules); also lifts a lockout and ends the sessions."""
        account = self.get(username)
        self._check_new_password(password, username, account.name if account else "", account.email if account else "")
        self._update(username, password_hash=hash_password(password, self.config.password_hash_rounds),
                     failed_sign_ins=0, locked_until=None)
        Sessions(self.store).end_all(username, "the password was changed")
        return self.get(username)

    # -- signing in --------------------------------------------------------------------------------
    def _reserve_attempt(self, username: str) -> bool:
        """Count one sign-in attempt in the database before its password is checked, in one statement each
        (so N attempts at once count N); False when the account is locked, disabled or unknown.

        An expired lock is lifted first; the attempt that reaches the limit sets the lock. A right
        password then resets the count (``_signed_in``); a wrong one leaves it counted.
        """
        now = utc_now()
        with self.store.writing() as connection:
            connection.execute(update(users).where(
                users.c.username == username, users.c.locked_until.is_not(None), users.c.locked_until <= now,
            ).values(failed_sign_ins=0, locked_until=None))
            reaches_limit = users.c.failed_sign_ins + 1 >= self.config.max_failed_sign_ins
            result = connection.execute(update(users).where(
                users.c.username == username, users.c.disabled.is_(False), users.c.locked_until.is_(None),
            ).values(failed_sign_ins=users.c.failed_sign_ins + 1,
                     locked_until=case((reaches_limit, now + timedelta(minutes=self.config.lockout_minutes)),
                                       else_=None)))
        return result.rowcount == 1

    def attempt_sign_in(self, username: str, password: str) -> SignInAttempt:
        """One password sign-in: counted and lock-checked in the database first, then the password.

        Unknown, disabled and locked accounts do the same bcrypt work and get the same outcome
        ("refused"), so neither the time nor the answer tells which names exist.
        """
        name = username.strip().lower()
        reserved = self._reserve_attempt(name)
        stored = self._password_hash(name) if reserved else None
        checked = stored or unusable_hash(self.config.password_hash_rounds)
        right = verify_password(password, checked) and stored is not None
        if right:
            self._update(name, failed_sign_ins=0, locked_until=None)
            return SignInAttempt(name, "signed_in", self.get(name))
        account = self.get(name) if reserved else None
        return SignInAttempt(name, "wrong" if reserved else "refused", account,
                             locked_now=account is not None and account.locked())

    def record_sign_in(self, username: str) -> None:
        self._update(username.strip().lower(), failed_sign_ins=0, locked_until=None)

    def refusal_message(self) -> str:
        """What every failed sign-in hears, whether the name exists, is locked or the password is wrong."""
        return (f"wrong username or password (after {self.config.max_failed_sign_ins} wrong passwords in a row an "
                f"account is locked for {self.config.lockout_minutes} minutes)")

    def authenticate(self, username: str, password: str) -> Account:
        """Check a password outside the browser (command line, tests), with the same rules as the sign-in form."""
        attempt = self.attempt_sign_in(username, password)
        if attempt.outcome != "signed_in":
            raise AuthError(self.refusal_message())
        return attempt.account
