"""The sign-in use case: a password sign-in is decided by the password alone and starts its own session; a
cookie is adopted only while the session it names counts. (The browser side of the race: tests/e2e.)"""

from __future__ import annotations

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from core.accounts.auth import sign_in_id
from core.platform.config import AppConfig
from core.services import Caller, Studio
from core.services.accounts import resume_from_cookie, sign_in_with_password, sign_out, start_session
from core.accounts.sessions import Sessions
from core.platform.store import sessions
from tests.conftest import PASSWORD, PROJECT_ROOT, make_account, workspace_store
from tests.test_pages import TIMEOUT, event_types
from tests.test_pages_auth import field, sign_in


@pytest.fixture
def studio(config) -> Studio:
    return Studio(config)


def test_a_password_sign_in_starts_its_own_session_whatever_the_browser_held(isolated_workspace, studio):
    root = make_account(isolated_workspace, "root", "admin")
    make_account(isolated_workspace, "ana", "analyst")
    roots = start_session(studio, root, now=1_800_000_000.0)  # the browser still holds root's live session
    result = sign_in_with_password(studio, Caller(None, roots.session_id), "ana", PASSWORD, now=1_800_000_000.0)
    assert result.attempt.outcome == "signed_in" and result.signed_in.account.username == "ana"
    # Its own id, though the cookie expiry is the same instant as root's: the id names the account too.
    assert result.signed_in.session_id == sign_in_id("ana", result.signed_in.expires) != roots.session_id
    sessions = Sessions(studio.store)
    assert sessions.refusal(result.signed_in.session_id, "ana") is None
    assert sessions.refusal(roots.session_id, "root") is None  # root's session is not touched
    assert sessions.refusal(roots.session_id, "ana") == "Please sign in again."  # and never ana's


def test_a_wrong_password_starts_no_session_and_is_counted_once(isolated_workspace, studio):
    make_account(isolated_workspace, "ana", "analyst")
    result = sign_in_with_password(studio, Caller(None, "tab-1"), "ana", "not the password")
    assert result.attempt.outcome == "wrong" and result.signed_in is None
    assert event_types(isolated_workspace).count("sign_in_failed") == 1
    assert studio.store.rows(select(sessions)) == []


def test_a_cookie_is_adopted_only_while_its_session_counts(isolated_workspace, studio):
    root = make_account(isolated_workspace, "root", "admin")
    signed = start_session(studio, root)
    resumed = resume_from_cookie(studio, "root", signed.expires)
    assert not isinstance(resumed, str) and resumed.session_id == signed.session_id
    assert resume_from_cookie(studio, "root", signed.expires + 1) == "Please sign in again."  # no such session
    sign_out(studio, Caller(root.actor, signed.session_id))
    assert "signed out" in resume_from_cookie(studio, "root", signed.expires)
    assert "can no longer sign in" in resume_from_cookie(studio, "gone", signed.expires)


def test_the_form_signs_in_the_account_that_typed_its_password_not_the_one_before(isolated_workspace, studio):
    """The tab still carries root's session (id, name) when ana signs in with the form."""
    root = make_account(isolated_workspace, "root", "admin")
    make_account(isolated_workspace, "ana", "analyst")
    roots = start_session(studio, root)
    app = AppTest.from_file(str(PROJECT_ROOT / "Home.py"), default_timeout=TIMEOUT)
    app.session_state["fs_session_id"] = roots.session_id  # left by root's sign-in in this tab
    app.session_state["username"] = "root"
    app.session_state["logout"] = True  # root signed out here
    app.run()
    sign_in(app, "ana", PASSWORD)
    assert any("Signed in as **ana**" in c.value for c in app.sidebar.caption)
    assert app.session_state["fs_session_id"] != roots.session_id
    assert Sessions(workspace_store(isolated_workspace)).refusal(app.session_state["fs_session_id"], "ana") is None
    assert not app.info or not any("sign in again" in i.value for i in app.info)


def test_a_rerun_after_a_wrong_password_neither_counts_nor_repeats_it(isolated_workspace):
    """A cookie report reruns the page with no new password: before, that rerun said "Wrong username or password"
    again with one fewer try left, and recorded another failed sign-in."""
    make_account(isolated_workspace, "ana", "analyst")
    app = AppTest.from_file(str(PROJECT_ROOT / "Home.py"), default_timeout=TIMEOUT)
    app.run()
    sign_in(app, "ana", "not the password")
    first = [e.value for e in app.error]
    left = AppConfig().auth.max_failed_sign_ins - 1
    assert any(f"{left} more wrong password(s)" in message for message in first)
    app.run()  # a rerun nobody asked for
    assert [e.value for e in app.error] == first
    assert event_types(isolated_workspace).count("sign_in_failed") == 1
    assert field(app, "Password").value == ""  # the wrong password is not kept in the form
    sign_in(app, "ana", PASSWORD)
    assert any("Signed in as **ana**" in c.value for c in app.sidebar.caption)
