"""Personal API tokens for the HTTP API: created by an admin for an account, shown once, stored hashed,
revocable, and bound to a role (a token never does more than its account may do now)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import insert, select, update

from core.accounts.auth import ROLE_PERMISSIONS, Account, Accounts, Actor, AuthError, Role
from core.platform.store import Store, api_tokens, as_utc, utc_now

PREFIX = "fs"
#: "Last used" is written at most this often (every call would take the database's write lock).
LAST_USED_EVERY = timedelta(minutes=1)
MAX_NAME_LENGTH = 100


class TokenRefused(AuthError):
    """The token is missing, unknown, revoked, or its account can no longer sign in."""


@dataclass(frozen=True)
class ApiToken:
    """A token as listed (never its secret)."""

    id: str
    username: str
    name: str
    role: Role
    created_at: datetime
    created_by: str
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @classmethod
    def from_row(cls, row: dict) -> "ApiToken":
        return cls(row["id"], row["username"], row["name"], Role(row["role"]), as_utc(row["created_at"]),
                   row["created_by"], as_utc(row["last_used_at"]), as_utc(row["revoked_at"]))


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def lesser_role(first: Role, second: Role) -> Role:
    """The role with fewer permissions (roles nest: user ⊂ analyst ⊂ admin)."""
    return first if ROLE_PERMISSIONS[first] <= ROLE_PERMISSIONS[second] else second


class Tokens:
    """The API tokens of one store."""

    def __init__(self, store: Store, accounts: Accounts) -> None:
        self.store, self.accounts = store, accounts

    def create(self, created_by: Actor, username: str, name: str, role: Role) -> tuple[ApiToken, str]:
        """A new token for ``username``; returns it and its secret, which is shown once and never stored."""
        account = self.accounts.get(username)
        if account is None:
            raise AuthError(f"no account called {username!r}")
        name = name.strip()
        if not name or len(name) > MAX_NAME_LENGTH:
            raise AuthError(f"give the token a name of 1 to {MAX_NAME_LENGTH} characters (e.g. what will use it)")
        if lesser_role(role, account.role) is not role:
            raise AuthError(f"{username} is a {account.role.value}; a token cannot have more rights ({role.value})")
        token_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        with self.store.writing() as connection:
            connection.execute(insert(api_tokens).values(
                id=token_id, username=username, name=name, role=role.value, secret_hash=_digest(secret),
                created_at=utc_now(), created_by=created_by.username))
        return self.get(token_id), f"{PREFIX}_{token_id}_{secret}"

    def get(self, token_id: str) -> ApiToken | None:
        rows = self.store.rows(select(api_tokens).where(api_tokens.c.id == token_id))
        return ApiToken.from_row(rows[0]) if rows else None

    def all(self) -> list[ApiToken]:
        return [ApiToken.from_row(row) for row in self.store.rows(select(api_tokens).order_by(api_tokens.c.created_at))]

    def revoke(self, revoked_by: Actor, token_id: str) -> ApiToken:
        """Stop a token working, from its next call on."""
        with self.store.writing() as connection:
            done = connection.execute(update(api_tokens).where(api_tokens.c.id == token_id,
                                                               api_tokens.c.revoked_at.is_(None))
                                      .values(revoked_at=utc_now(), revoked_by=revoked_by.username)).rowcount
        token = self.get(token_id)
        if token is None:
            raise AuthError(f"no API token {token_id!r}")
        if not done:
            raise AuthError(f"the token {token.name!r} was already revoked")
        return token

    def authenticate(self, presented: str | None) -> tuple[ApiToken, Actor]:
        """Who a presented token acts as: its account, with the lesser of the token's role and the account's
        current role. Every refusal says the same (no hint whether the id exists)."""
        parts = (presented or "").split("_", 2)
        if len(parts) != 3 or parts[0] != PREFIX:
            raise TokenRefused("a valid API token is needed: send 'Authorization: Bearer fs_…'")
        rows = self.store.rows(select(api_tokens).where(api_tokens.c.id == parts[1]))
        expected = rows[0]["secret_hash"] if rows else _digest("no such token")
        if not hmac.compare_digest(expected, _digest(parts[2])) or not rows or rows[0]["revoked_at"] is not None:
            raise TokenRefused("this API token is not valid (unknown or revoked)")
        token = ApiToken.from_row(rows[0])
        account: Account | None = self.accounts.get(token.username)
        if account is None or account.disabled:
            raise TokenRefused(f"the account of this API token ({token.username}) cannot sign in")
        if token.last_used_at is None or utc_now() - token.last_used_at > LAST_USED_EVERY:  # not a write per call
            with self.store.writing() as connection:
                connection.execute(update(api_tokens).where(api_tokens.c.id == token.id).values(last_used_at=utc_now()))
        return token, Actor(account.username, lesser_role(token.role, account.role))
