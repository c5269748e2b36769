"""Personal API tokens: admins create and revoke them; the HTTP API turns one into a caller."""

from __future__ import annotations

from core.accounts.audit import EventType
from core.accounts.auth import Permission, Role
from core.services.accounts import accounts
from core.services.studio import Caller, Studio
from core.accounts.tokens import ApiToken, TokenRefused, Tokens


def tokens(studio: Studio) -> Tokens:
    return Tokens(studio.store, accounts(studio))


def create_token(studio: Studio, caller: Caller, username: str, name: str, role: Role) -> tuple[ApiToken, str]:
    """A new token for an account (the secret is returned once, to show once)."""
    token, secret = tokens(studio).create(caller.require(Permission.MANAGE_USERS), username, name, role)
    studio.audit(caller, EventType.TOKEN_CREATED, token=token.id, account=username, role=role.value, name=token.name)
    return token, secret


def revoke_token(studio: Studio, caller: Caller, token_id: str) -> ApiToken:
    token = tokens(studio).revoke(caller.require(Permission.MANAGE_USERS), token_id)
    studio.audit(caller, EventType.TOKEN_REVOKED, token=token.id, account=token.username, name=token.name)
    return token


def list_tokens(studio: Studio, caller: Caller) -> list[ApiToken]:
    caller.require(Permission.MANAGE_USERS)
    return tokens(studio).all()


def api_caller(studio: Studio, presented: str | None) -> Caller:
    """The caller a request's bearer token stands for (raises TokenRefused); its calls are grouped in the
    log under the token's id."""
    token, actor = tokens(studio).authenticate(presented)
    return Caller(actor, f"token:{token.id}", "api")


__all__ = ["ApiToken", "TokenRefused", "api_caller", "create_token", "list_tokens", "revoke_token", "tokens"]
