"""Accounts: hashing, the first admin, lockout, role rules, the cookie key."""

from __future__ import annotations

import os
import stat

import pytest
from streamlit_authenticator.utilities.hasher import Hasher

from core.auth import (
    Accounts, Actor, AuthError, Permission, PermissionDenied, Role, cookie_key, hash_password, require,
    verify_password,
)
from core.config import AuthConfig
from core.publishing import publish
from core.preparation import save_preparation
from tests.conftest import ADMIN, PASSWORD, USER, workspace_store


@pytest.fixture
def accounts(isolated_workspace) -> Accounts:
    return Accounts(workspace_store(isolated_workspace), AuthConfig(max_failed_sign_ins=3, lockout_minutes=15))


def test_passwords_are_bcrypt_hashes_the_authenticator_accepts():
    hashed = hash_password("s3cret-enough")
    assert hashed.startswith("$2b$") and "s3cret" not in hashed
    assert verify_password("s3cret-enough", hashed) and not verify_password("s3cret-enougH", hashed)
    assert Hasher.check_pw("s3cret-enough", hashed)  # what streamlit-authenticator checks at sign-in
    assert hash_password("same") != hash_password("same")  # salted
    assert not verify_password("x", "not a hash")


def test_the_first_admin_is_created_once_and_no_account_exists_before(accounts):
    assert not accounts.any_accounts() and accounts.credentials() == {"usernames": {}}
    admin = accounts.create_first_admin("Boss", "The Boss", "boss@example.com", PASSWORD)
    assert (admin.username, admin.role) == ("boss", Role.ADMIN)
    with pytest.raises(AuthError, match="already exists; sign in instead"):
        accounts.create_first_admin("other", "Other", "", PASSWORD)
    with pytest.raises(AuthError, match="at least 8 characters"):
        accounts.create(admin.actor, "shorty", "", "", "short", Role.USER)
    with pytest.raises(AuthError, match="is not allowed"):
        accounts.create(admin.actor, "bad name!", "", "", PASSWORD, Role.USER)


def test_only_admins_manage_accounts_and_the_last_admin_stays(accounts):
    admin = accounts.create_first_admin("boss", "Boss", "", PASSWORD).actor
    analyst = accounts.create(admin, "ana", "Ana", "", PASSWORD, Role.ANALYST)
    with pytest.raises(PermissionDenied, match=r"ana \(analyst\) may not manage users"):
        accounts.create(analyst.actor, "eve", "Eve", "", PASSWORD, Role.ADMIN)
    with pytest.raises(PermissionDenied, match="sign in to manage users"):
        accounts.change_role(None, "ana", Role.ADMIN)
    with pytest.raises(AuthError, match="last active admin"):
        accounts.change_role(admin, "boss", Role.USER)
    with pytest.raises(AuthError, match="cannot disable your own account"):
        accounts.set_disabled(admin, "boss", True)
    accounts.change_role(admin, "ana", Role.ADMIN)
    assert accounts.change_role(Actor("ana", Role.ADMIN), "boss", Role.USER).role is Role.USER
    accounts.set_disabled(Actor("ana", Role.ADMIN), "boss", True)
    assert "boss" not in accounts.credentials()["usernames"]  # a disabled account cannot sign in
    with pytest.raises(AuthError, match="disabled"):
        accounts.authenticate("boss", PASSWORD)


def test_repeated_failures_lock_the_account_until_an_admin_resets_it(accounts):
    admin = accounts.create_first_admin("boss", "Boss", "", PASSWORD).actor
    accounts.create(admin, "uma", "Uma", "", PASSWORD, Role.USER)
    for _ in range(2):
        with pytest.raises(AuthError, match="wrong username or password"):
            accounts.authenticate("uma", "guess")
    with pytest.raises(AuthError, match="locked until"):
        accounts.authenticate("uma", "guess")
    assert accounts.get("uma").locked()
    with pytest.raises(AuthError, match="locked until"):
        accounts.authenticate("uma", PASSWORD)  # even the right password waits for the lock to end
    assert accounts.credentials()["usernames"]["uma"]["failed_login_attempts"] == 3  # the widget refuses too
    accounts.reset_password(admin, "uma", "a brand new password")
    assert accounts.authenticate("uma", "a brand new password").failed_sign_ins == 0


def test_a_lock_ends_after_the_lockout_time(isolated_workspace):
    accounts = Accounts(workspace_store(isolated_workspace), AuthConfig(max_failed_sign_ins=1, lockout_minutes=0))
    accounts.create_first_admin("boss", "Boss", "", PASSWORD)
    with pytest.raises(AuthError):
        accounts.authenticate("boss", "nope")
    assert accounts.authenticate("boss", PASSWORD).username == "boss"


def test_roles_allow_exactly_their_permissions():
    assert require(USER, Permission.CLASSIFY) is USER
    for permission in (Permission.MANAGE_DATA, Permission.TRAIN, Permission.PUBLISH, Permission.VIEW_LOGS):
        with pytest.raises(PermissionDenied):
            require(USER, permission)
    analyst = Actor("ana", Role.ANALYST)
    assert analyst.can(Permission.PUBLISH) and not analyst.can(Permission.MANAGE_USERS)
    assert all(ADMIN.can(p) for p in Permission)


def test_core_functions_that_change_data_check_the_role(isolated_workspace, config):
    from tests.conftest import save_demo_version, train_runs

    version = save_demo_version(isolated_workspace, config)
    (run,) = train_runs(isolated_workspace, config, version, kinds=("tfidf_nb",))
    with pytest.raises(PermissionDenied, match=r"uma \(user\) may not publish models"):
        publish(isolated_workspace, run.run_id, USER)
    with pytest.raises(PermissionDenied, match="may not manage data"):
        save_preparation(isolated_workspace, "x", None, None, USER)


def test_cookie_key_is_generated_once_private_and_placeholders_are_refused(isolated_workspace):
    first = cookie_key(isolated_workspace.root)
    assert len(first) >= 32 and cookie_key(isolated_workspace.root) == first
    key_file = isolated_workspace.root / "secrets" / "cookie_key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    for placeholder in ("some_key", "some_signature_key", "random_signature_key", "short-key"):
        with pytest.raises(AuthError, match="placeholder or shorter"):
            cookie_key(isolated_workspace.root, placeholder)
    assert cookie_key(isolated_workspace.root, "x" * 40) == "x" * 40
    key_file.write_text("abcdef")
    with pytest.raises(AuthError, match="cookie_key is a placeholder"):
        cookie_key(isolated_workspace.root)


def test_a_password_over_72_bytes_is_refused_in_words_never_with_a_traceback(accounts):
    """bcrypt 5 raises ValueError past 72 bytes: the CLI printed a traceback, the forms 'Something went wrong'."""
    admin = accounts.create_first_admin("boss", "Boss", "", PASSWORD)
    for too_long in ("x" * 73, "é" * 37):  # 73 letters; 37 two-byte letters (74 bytes)
        with pytest.raises(AuthError, match="too long: at most 72 bytes"):
            accounts.create(admin.actor, "long", "", "", too_long, Role.USER)
        with pytest.raises(AuthError, match="too long"):
            accounts.reset_password(admin.actor, "boss", too_long)
    assert accounts.create(admin.actor, "exact", "", "", "y" * 72, Role.USER).username == "exact"
    with pytest.raises(AuthError, match="wrong username or password"):  # signing in with one: just wrong
        accounts.authenticate("boss", "z" * 200)
