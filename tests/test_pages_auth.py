"""Sign-in and roles through the real pages (AppTest): first admin, lockout, refusals, sign-out."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from core.accounts.auth import Accounts, Actor, Role
from core.platform.config import AppConfig
from core.platform.store import events
from tests.conftest import ADMIN, PASSWORD, PROJECT_ROOT, make_account, workspace_store
from tests.test_pages import TIMEOUT, event_types, open_page, texts

PROTECTED = ["pages/views/data.py", "pages/views/topics.py", "pages/views/train.py", "pages/views/evaluate.py", "pages/views/classify.py", "pages/views/admin.py"]


def fresh_app() -> AppTest:
    return AppTest.from_file(str(PROJECT_ROOT / "Home.py"), default_timeout=TIMEOUT)


def field(app: AppTest, label: str):
    return next(t for t in app.text_input if t.label == label)


def sign_in(app: AppTest, username: str, password: str) -> AppTest:
    """Fill in and submit the sign-in form: a right password opens the studio in the same run."""
    field(app, "Username").input(username)
    field(app, "Password").input(password)
    next(b for b in app.button if b.label == "Sign in").click().run()
    assert not app.exception, app.exception
    return app


@pytest.mark.slow
def test_first_start_asks_only_for_an_admin_account_then_signs_in(isolated_workspace):
    app = fresh_app()
    app.run()
    assert [t.value for t in app.title] == ["Welcome to Feedback Studio"]
    assert "No account exists yet" in texts(app)
    app.text_input(key="setup_username").input("boss")
    app.text_input(key="setup_password").input(PASSWORD)
    app.text_input(key="setup_password_again").input(PASSWORD + "x")
    app.button[0].click().run()
    assert any("passwords differ" in e.value for e in app.error)
    app.text_input(key="setup_password_again").input(PASSWORD)
    app.button[0].click().run()
    # Signed in at once: no second typing of the password they just chose.
    assert any("Admin account boss created; you are signed in" in s.value for s in app.success)
    assert app.title[0].value == "Feedback Studio" and any(h.value == "How it works" for h in app.subheader)
    assert any("Signed in as **boss** · admin" in c.value for c in app.sidebar.caption)
    assert event_types(isolated_workspace) == ["account_created", "sign_in"]

    app.run()  # the cookie component's report reruns the page at once: the welcome must outlive that rerun
    assert any("Admin account boss created; you are signed in" in s.value for s in app.success)
    app.button(key="sign_out").click().run()  # and the form signs them in again later
    sign_in(app, "boss", PASSWORD)
    assert any(h.value == "How it works" for h in app.subheader)
    assert event_types(isolated_workspace) == ["account_created", "sign_in", "sign_out", "sign_in"]


@pytest.mark.slow
def test_repeated_wrong_passwords_lock_the_account(isolated_workspace):
    make_account(isolated_workspace, "uma", "user")
    app = fresh_app()
    app.run()
    limit = AppConfig().auth.max_failed_sign_ins
    for attempt in range(1, limit + 1):
        sign_in(app, "uma", "wrong password")
        assert any("Wrong username or password" in e.value for e in app.error)
        if attempt < limit:  # warned before the lockout, in words that do not say whether "uma" exists
            assert any(f"{limit - attempt} more wrong password(s) in a row and the account is locked" in e.value
                       for e in app.error)
    sign_in(app, "uma", PASSWORD)  # the right password no longer helps
    locked_answer = [e.value for e in app.error]
    assert app.session_state["authentication_status"] is not True
    account = Accounts(workspace_store(isolated_workspace), AppConfig().auth).get("uma")
    assert account.locked()
    fresh = fresh_app()
    fresh.run()
    sign_in(fresh, "nobody", PASSWORD)
    # A locked account and a name that does not exist get the same answer (only this tab's count differs).
    answers = locked_answer + [e.value for e in fresh.error]
    assert len(answers) == 2 and all(a.startswith("Wrong username or password.") for a in answers)
    assert not any("locked until" in a or "This account" in a for a in answers)
    types = event_types(isolated_workspace)
    # every wrong password, then the attempt on the locked account (recorded too, without a name)
    assert types.count("sign_in_failed") == limit + 2 and types.count("lockout") == 1
    last = workspace_store(isolated_workspace).rows(select(events).order_by(events.c.id.desc()).limit(2))
    assert [(r["event_type"], r["details"]) for r in last] == [("sign_in_failed", {"refused": True})] * 2


@pytest.mark.parametrize("page", PROTECTED)
def test_every_page_asks_to_sign_in_when_nobody_is_signed_in(isolated_workspace, page):
    app = open_page(page, as_user="root", role="admin")  # the page's URL is now the one open
    app.session_state["authentication_status"] = None  # ... in a session nobody is signed in to
    app.session_state["fs_actor"] = None
    app.run()
    assert not app.exception, app.exception
    # Either the sign-in form at the page's address, or the page's own refusal: never the page.
    asked_to_sign_in = any(b.label == "Sign in" for b in app.button)
    refused = any("Please sign in first" in w.value for w in app.warning)
    assert asked_to_sign_in or refused
    assert not ({"Data", "Train", "Evaluate", "Classify"} & {t.value for t in app.title})
    assert not app.get("file_uploader") and not app.dataframe


@pytest.mark.parametrize("page", ["pages/views/data.py", "pages/views/train.py", "pages/views/evaluate.py"])
def test_a_user_account_is_refused_on_analyst_pages_even_by_direct_url(isolated_workspace, page):
    app = open_page(page, as_user="uma", role="user")
    refusal = " ".join(e.value for e in app.error)
    assert "You do not have access to this page" in refusal and "uma (user)" in refusal
    assert len(app.title) == 0  # the page stopped before drawing anything


def test_a_user_opens_classify_without_errors(isolated_workspace):
    """(The menu a user sees, Home and Classify only, is asserted in the browser journey.)"""
    app = open_page(as_user="uma", role="user")
    app.switch_page("pages/views/classify.py").run()
    assert not app.exception and app.title[0].value == "Classify"
    assert not app.error


def test_a_placeholder_cookie_key_stops_the_app(isolated_workspace):
    make_account(isolated_workspace, "root", "admin")
    app = fresh_app()
    app.secrets["auth"] = {"cookie_key": "some_signature_key"}
    app.run()
    assert any("refuses to start" in e.value and "placeholder" in e.value for e in app.error)
    assert not any(b.label == "Sign in" for b in app.button)


@pytest.mark.slow
def test_sign_out_and_a_disabled_account_end_the_session(isolated_workspace):
    make_account(isolated_workspace, "ana", "analyst")
    app = open_page(as_user="ana")
    app.button(key="sign_out").click().run()
    assert any("You are signed out" in i.value for i in app.info)
    assert any(b.label == "Sign in" for b in app.button)

    app = open_page(as_user="ana")
    Accounts(workspace_store(isolated_workspace), AppConfig().auth).set_disabled(ADMIN if False else Actor("root", Role.ADMIN), "ana", True)
    app.run()
    assert any("Your account was disabled" in i.value for i in app.info)
    assert event_types(isolated_workspace).count("sign_out") == 1


@pytest.mark.slow
def test_a_sign_in_with_a_password_over_72_bytes_is_just_a_wrong_password(isolated_workspace):
    make_account(isolated_workspace, "uma", "user")
    app = fresh_app()
    app.run()
    sign_in(app, "uma", "p" * 100)
    assert not app.exception, app.exception
    assert any("Wrong username or password" in e.value for e in app.error)
    assert not any("Something went wrong" in e.value for e in app.error)


@pytest.mark.parametrize("ending", ["signed out elsewhere", "password reset", "role changed", "expired"])
def test_a_session_ends_everywhere_when_it_is_ended_in_the_database(isolated_workspace, ending):
    """The cookie was a bearer token: sign-out and password resets did not revoke it, and a new tab near the
    end of a session started a fresh 12 hours."""
    from datetime import timedelta

    from sqlalchemy import update

    from core.accounts.sessions import Sessions
    from core.platform.store import sessions, utc_now

    make_account(isolated_workspace, "ana", "analyst")
    app = open_page(as_user="ana")  # a tab restored from the sign-in cookie: the same session row
    assert any("Signed in as **ana**" in c.value for c in app.sidebar.caption)
    store, session = workspace_store(isolated_workspace), app.session_state["fs_session_id"]
    accounts = Accounts(store, AppConfig().auth)
    if ending == "signed out elsewhere":
        Sessions(store).end(session, "signed out")  # what the Sign out button of another tab does
    elif ending == "password reset":
        accounts.reset_password("ana", "a completely new secret")
    elif ending == "role changed":
        accounts.change_role("ana", Role.USER)
    else:  # the session's lifetime counts from its sign-in, whatever tab is open now
        with store.writing() as connection:
            connection.execute(update(sessions).where(sessions.c.id == session)
                               .values(expires_at=utc_now() - timedelta(seconds=1)))
    app.run()
    assert not any("Signed in as" in c.value for c in app.sidebar.caption)
    assert any("sign in again" in i.value for i in app.info), [i.value for i in app.info]
    assert any(b.label == "Sign in" for b in app.button)
