"""Accounts: hashing, the first admin, lockout, role rules, the cookie key."""

from __future__ import annotations

import os
import stat

import threading
from typing import Iterator

import pytest
from streamlit_authenticator.utilities.hasher import Hasher

from core.accounts.auth import (
    Accounts, Actor, AuthError, Permission, PermissionDenied, Role, cookie_key, hash_password, require,
    verify_password,
)
from core.platform.config import AuthConfig
from core.platform.store import Store
from tests.conftest import ADMIN, PASSWORD, USER, race_in_processes, workspace_store


@pytest.fixture
def accounts(store) -> Accounts:
    """bcrypt's lowest work factor: these tests are about the rules, not the hashing cost (see the timing test)."""
    return Accounts(store, AuthConfig(max_failed_sign_ins=3, lockout_minutes=15, password_hash_rounds=4))


def at_full_cost(accounts: Accounts) -> Accounts:
    """The same accounts hashing at the default work factor, as the app does: the races below are "at once"
    only while a check takes as long as it does in use (at bcrypt's lowest, one guess ends before the next
    starts), and the timing test compares real costs."""
    return Accounts(accounts.store, AuthConfig(max_failed_sign_ins=3, lockout_minutes=15))


def test_passwords_are_bcrypt_hashes_the_authenticator_accepts():
    hashed = hash_password("s3cret-enough")
    assert hashed.startswith("$2b$") and "s3cret" not in hashed
    assert verify_password("s3cret-enough", hashed) and not verify_password("s3cret-enougH", hashed)
    assert Hasher.check_pw("s3cret-enough", hashed)  # what streamlit-authenticator checks at sign-in
    assert hash_password("same") != hash_password("same")  # salted
    assert not verify_password("x", "not a hash")


def test_the_first_admin_is_created_once_and_no_account_exists_before(accounts):
    assert not accounts.any_accounts()
    admin = accounts.create_first_admin("Boss", "The Boss", "boss@example.com", PASSWORD)
    assert (admin.username, admin.role) == ("boss", Role.ADMIN)
    with pytest.raises(AuthError, match="already exists; sign in instead"):
        accounts.create_first_admin("other", "Other", "", PASSWORD)
    with pytest.raises(AuthError, match="at least 8 characters"):
        accounts.create(admin.actor, "shorty", "", "", "short", Role.USER)
    with pytest.raises(AuthError, match="is not allowed"):
        accounts.create(admin.actor, "bad name!", "", "", PASSWORD, Role.USER)


def test_the_last_admin_stays_and_nobody_disables_their_own_account(accounts):
    """(Who may manage accounts is the use case's check: tests/test_services.py.)"""
    admin = accounts.create_first_admin("boss", "Boss", "", PASSWORD).actor
    accounts.create(admin, "ana", "Ana", "", PASSWORD, Role.ANALYST)
    with pytest.raises(AuthError, match="last active admin"):
        accounts.change_role("boss", Role.USER)
    with pytest.raises(AuthError, match="cannot disable your own account"):
        accounts.set_disabled(admin, "boss", True)
    accounts.change_role("ana", Role.ADMIN)
    assert accounts.change_role("boss", Role.USER).role is Role.USER
    accounts.set_disabled(Actor("ana", Role.ADMIN), "boss", True)
    assert accounts.attempt_sign_in("boss", PASSWORD).outcome == "refused"  # the right password, refused


@pytest.mark.slow
def test_repeated_failures_lock_the_account_until_an_admin_resets_it(accounts):
    admin = accounts.create_first_admin("boss", "Boss", "", PASSWORD).actor
    accounts.create(admin, "uma", "Uma", "", PASSWORD, Role.USER)
    for _ in range(3):
        with pytest.raises(AuthError, match="wrong username or password"):
            accounts.authenticate("uma", "guess")
    assert accounts.get("uma").locked() and accounts.get("uma").failed_sign_ins == 3
    refusal = accounts.refusal_message()
    with pytest.raises(AuthError) as locked:
        accounts.authenticate("uma", PASSWORD)  # even the right password waits for the lock to end
    with pytest.raises(AuthError) as unknown:
        accounts.authenticate("nobody", PASSWORD)
    assert str(locked.value) == str(unknown.value) == refusal  # nothing tells a locked account from no account
    assert accounts.attempt_sign_in("uma", PASSWORD).outcome == "refused"
    accounts.reset_password("uma", "a brand new password")
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
            accounts.reset_password("boss", too_long)
    assert accounts.create(admin.actor, "exact", "", "", ("quiet harbour " * 6)[:72], Role.USER).username == "exact"
    with pytest.raises(AuthError, match="wrong username or password"):  # signing in with one: just wrong
        accounts.authenticate("boss", "z" * 200)


def _guess(accounts: Accounts, password: str, outcomes: list, start: threading.Barrier) -> None:
    start.wait()
    outcomes.append(accounts.attempt_sign_in("uma", password).outcome)


@pytest.mark.slow
def test_parallel_guesses_count_each_and_cannot_outrun_the_lockout(accounts):
    """8 wrong passwords at once with a limit of 3 were all checked (counter 2, not locked); 7 wrong and the
    right one at once signed in."""
    accounts = at_full_cost(accounts)
    admin = accounts.create_first_admin("boss", "Boss", "", PASSWORD).actor
    accounts.create(admin, "uma", "Uma", "", PASSWORD, Role.USER)
    outcomes: list[str] = []
    start = threading.Barrier(8)
    threads = [threading.Thread(target=_guess, args=(accounts, "wrong guess", outcomes, start)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused"] * 5 + ["wrong"] * 3  # only three passwords were ever checked
    assert accounts.get("uma").failed_sign_ins == 3 and accounts.get("uma").locked()

    accounts.reset_password("uma", PASSWORD)
    outcomes.clear()
    start = threading.Barrier(8)
    threads = [threading.Thread(target=_guess, args=(accounts, password, outcomes, start))
               for password in ["wrong guess"] * 7 + [PASSWORD]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    checked = [o for o in outcomes if o != "refused"]
    assert len(checked) == 3 and outcomes.count("refused") == 5  # at most the limit is ever tried
    # the right password signs in only when it was among the three tries the limit allows
    assert outcomes.count("signed_in") <= 1


def _guess_in_a_process(start, results, url: str) -> None:
    from core.platform.store import Store

    accounts = Accounts(Store(url), AuthConfig(max_failed_sign_ins=3, lockout_minutes=15))
    start.wait()
    results.put(accounts.attempt_sign_in("uma", "wrong guess").outcome)


def test_parallel_guesses_from_several_processes_count_each(accounts, database_url):
    accounts = at_full_cost(accounts)
    admin = accounts.create_first_admin("boss", "Boss", "", PASSWORD).actor
    accounts.create(admin, "uma", "Uma", "", PASSWORD, Role.USER)
    outcomes = race_in_processes(_guess_in_a_process, [(database_url,)] * 6)
    assert outcomes == ["refused"] * 3 + ["wrong"] * 3
    assert accounts.get("uma").failed_sign_ins == 3 and accounts.get("uma").locked()


def test_an_unknown_name_costs_the_same_bcrypt_work_as_a_real_one(accounts):
    """An unknown name answered in 0 ms and a known one in ~300 ms: the time told which names exist."""
    import time

    accounts = at_full_cost(accounts)
    accounts.create_first_admin("boss", "Boss", "", PASSWORD)
    accounts.attempt_sign_in("warm-up", "x")  # the stand-in hash is made once

    def seconds(name: str) -> float:
        started = time.perf_counter()
        accounts.attempt_sign_in(name, "not the password")
        return time.perf_counter() - started

    known, unknown = min(seconds("boss") for _ in range(2)), min(seconds("nobody-here") for _ in range(2))
    assert unknown > 0.4 * known  # both run bcrypt once (was: unknown ≈ 0)


def _create_in_a_process(start, results, url: str, username: str, first: bool) -> None:
    from core.platform.store import Store

    accounts = Accounts(Store(url), AuthConfig())
    start.wait()
    try:
        if first:
            accounts.create_first_admin(username, username, "", PASSWORD)
        else:
            accounts.create(ADMIN, username, username, "", PASSWORD, Role.USER)
        results.put("created")
    except AuthError as refusal:
        results.put(f"refused: {refusal}")
    except Exception as error:  # noqa: BLE001  (a crash is a failure the test reports)
        results.put(f"crashed: {type(error).__name__}")


def _race(url: str, usernames: list[str], first: bool) -> list[str]:
    return race_in_processes(_create_in_a_process, [(url, name, first) for name in usernames], timeout=60)


ROUNDS = 4  # a race shows on some rounds only: each round is a fresh database


def fresh_database_urls(database_url: str, tmp_path, request) -> Iterator[str]:
    """One empty database per round, of the kind the test runs on."""
    from bench.postgres_server import fresh_database
    from core.platform.store import default_database_url

    for round_ in range(ROUNDS):
        if database_url.startswith("sqlite"):
            yield default_database_url(tmp_path / f"round-{round_}")
        else:
            yield fresh_database(request.getfixturevalue("postgres_admin_url"))


@pytest.mark.slow
def test_two_processes_creating_the_first_admin_at_once_make_one(database_url, tmp_path, request):
    """Both succeeded, 5 of 5 trials: the check ran before the write lock was taken."""
    for url in fresh_database_urls(database_url, tmp_path, request):
        accounts = Accounts(Store(url), AuthConfig())
        outcomes = _race(url, ["alpha", "bravo", "charlie", "delta", "echo", "fox"], first=True)
        assert outcomes.count("created") == 1, outcomes
        assert all("already exists; sign in instead" in o for o in outcomes if o != "created"), outcomes
        assert len(accounts.all()) == 1 and accounts.all()[0].role is Role.ADMIN


@pytest.mark.slow
def test_two_processes_creating_one_name_at_once_make_one_account(database_url, tmp_path, request):
    for url in fresh_database_urls(database_url, tmp_path, request):
        Accounts(Store(url), AuthConfig()).create_first_admin("boss", "Boss", "", PASSWORD)
        outcomes = _race(url, ["uma"] * 6, first=False)
        assert outcomes.count("created") == 1, outcomes  # the others are told, none crashes on the key
        assert all("already exists" in o for o in outcomes if o != "created"), outcomes


@pytest.mark.parametrize("password, why", [("password", "top-10 common password"), ("12345678", "common"),
                                           ("qwertyuiop", "common password"), ("uma12345", "commonly used"),
                                           ("UmaUmbridge", "guess")])
def test_easy_passwords_are_refused_and_the_message_says_why(accounts, password, why):
    """'password' and '12345678' were accepted; the username and the name count as guessable."""
    admin = accounts.create_first_admin("boss", "Boss", "", PASSWORD).actor
    with pytest.raises(AuthError, match="too easy to guess") as refusal:
        accounts.create(admin, "uma", "Uma Umbridge", "", password, Role.USER)
    assert why in str(refusal.value).lower()
    accounts.create(admin, "uma", "Uma Umbridge", "", "marble tide lantern", Role.USER)
    with pytest.raises(AuthError, match="too easy to guess"):  # a reset is held to the same rule
        accounts.reset_password("uma", "password")
