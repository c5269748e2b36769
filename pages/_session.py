"""Sign-in views: the first-admin form, the sign-in form, the session's account and sign-out.

streamlit-authenticator draws the sign-in form and keeps the signed cookie;
the accounts, lockout and roles live in ``core.auth`` and the database. Every
run re-reads the account, so a disabled account or a changed role takes effect
at once, and a session older than ``auth.session_hours`` ends.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import streamlit as st
import streamlit_authenticator as stauth
from streamlit_authenticator.utilities.exceptions import LoginError, LogoutError

from core.auth import Accounts, Actor, AuthError, Role, cookie_key, sign_in_id
from core.config import AppConfig
from core.services.accounts import (
    accounts, begin_session, create_first_admin, record_failed_sign_in, session_refusal, sign_out, signed_in,
)
from core.store import Store, default_database_url
from core.services import Caller, Studio
from core.workspace import Workspace

ACTOR_KEY = "fs_actor"
SIGNED_IN_AT = "fs_signed_in_at"
SESSION_ID = "fs_session_id"
NOTICE = "fs_sign_in_notice"
#: Set when someone signs out of this browser tab: the sign-in view then sits at Home's address only.
SIGNED_OUT_HERE = "fs_signed_out_here"
#: Set when the first admin was signed in without the form: the next run issues the sign-in cookie.
ISSUE_COOKIE = "fs_issue_cookie"
WELCOME = "fs_welcome"
#: Set when a cookie that cannot sign in was refused: the next run tells the browser to drop it.
EXPIRE_COOKIE = "fs_expire_cookie"
#: How the last password sign-in went (core.auth.SignInAttempt), for the form's message and the log.
LAST_ATTEMPT = "fs_last_attempt"
#: Wrong passwords typed in this browser tab (for the warning before a lockout).
FAILED_HERE = "fs_failed_here"


@st.cache_resource(show_spinner=False)
def _studio(workspace_root: str, database_url: str, _config: AppConfig) -> Studio:
    return Studio(_config, Workspace(Path(workspace_root), _config.storage.file_access).ensure(), Store(database_url))


def app_studio(config: AppConfig) -> Studio:
    """The one studio of this server — database pool, training queue, loaded model — shared by every session;
    it acts on the configuration as loaded for this page run (an edited settings file takes effect at once)."""
    studio = _studio(str(config.workspace_path),
                     config.storage.database_url or default_database_url(config.workspace_path), config)
    studio.config = config
    return studio


def caller() -> Caller:
    """Who is signed in to this browser session, as the use cases in core.services take it."""
    return Caller(current_actor(), session_id())


def session_id() -> str:
    """A random id for this browser session, so the audit log can group one person's actions."""
    return st.session_state.setdefault(SESSION_ID, secrets.token_hex(8))


def current_actor() -> Actor | None:
    """Who is signed in to this session (set by Home.py after checking the account), or None."""
    data = st.session_state.get(ACTOR_KEY)
    return Actor(data["username"], Role(data["role"])) if data else None


def configured_cookie_key() -> str | None:
    """The cookie key from Streamlit secrets (``[auth] cookie_key``), if any."""
    try:
        return st.secrets["auth"]["cookie_key"]
    except Exception:  # noqa: BLE001  (no secrets file, no [auth] section or no key: Streamlit raises several kinds)
        return None


def authenticator(studio: Studio) -> stauth.Authenticate:
    """The sign-in widget's engine; the app stops with a clear message on a placeholder cookie key."""
    try:
        key = cookie_key(studio.workspace.root, configured_cookie_key())
    except AuthError as exc:
        st.error(f"Feedback Studio refuses to start: {exc}.")
        st.stop()
    rules = studio.config.auth
    auth = stauth.Authenticate(accounts(studio).credentials(), rules.cookie_name, key,
                               cookie_expiry_days=rules.session_hours / 24, auto_hash=False)
    _only_well_formed_cookies(auth)
    return auth


def _only_well_formed_cookies(auth: stauth.Authenticate) -> None:
    """A cookie that is not an HS256 token carrying a name and an expiry (``alg=none``, another algorithm,
    a field missing, garbage) counts as no cookie; streamlit-authenticator would raise on some of them."""
    model = auth.cookie_controller.cookie_model
    read = model.get_cookie

    def checked() -> dict | bool | None:
        try:
            token = read()
        except Exception:  # noqa: BLE001  (jwt and KeyError alike: whatever it is, it is not our cookie)
            return None
        if token is False or token is None:
            return token
        well_formed = (isinstance(token, dict) and isinstance(token.get("username"), str)
                       and isinstance(token.get("exp_date"), (int, float)))
        return token if well_formed else None

    model.get_cookie = checked


def first_admin_setup(studio: Studio) -> None:
    """Shown only while no account exists: create the first admin (no default password anywhere)."""
    st.title("Welcome to Feedback Studio")
    st.markdown("No account exists yet. Create the **first admin account**; the admin then creates accounts for "
                "analysts and users.")
    with st.form("first_admin"):
        username = st.text_input("Username", key="setup_username")
        name = st.text_input("Full name", key="setup_name")
        email = st.text_input("Email (optional)", key="setup_email")
        password = st.text_input("Password", type="password", key="setup_password")
        repeated = st.text_input("Repeat the password", type="password", key="setup_password_again")
        submitted = st.form_submit_button("Create the admin account", type="primary")
    if submitted:
        if password != repeated:
            st.error("The two passwords differ.")
            return
        try:
            account = create_first_admin(studio, caller(), username, name, email, password)
        except AuthError as exc:
            st.error(f"The account cannot be created: {exc}.")
            return
        # Signed in at once, as the sign-in form would: they just proved the password twice.
        st.session_state.update({"authentication_status": True, "username": account.username,
                                 "name": account.name, ISSUE_COOKIE: True})
        st.session_state[WELCOME] = f"Admin account {account.username} created; you are signed in."
        st.rerun()


def _start_session(studio: Studio, auth: stauth.Authenticate) -> None:
    """A new sign-in: its id (from the cookie just issued) and a session row that ends with the cookie."""
    expires = auth.cookie_controller.cookie_model.exp_date
    st.session_state[SESSION_ID] = sign_in_id(st.session_state["username"], expires)
    begin_session(studio, session_id(), st.session_state["username"], expires)


def _passwords_checked_in_the_database(auth: stauth.Authenticate, book: Accounts) -> None:
    """Every password the form checks goes through ``Accounts.attempt_sign_in``: counted and lock-checked in
    the database before bcrypt runs, so parallel guesses cannot outrun the lockout (the authenticator's own
    counter lives in one page run's memory). The outcome is kept for :func:`sign_in_form`."""
    model = auth.authentication_controller.authentication_model

    def check(username: str, password: str) -> bool:
        attempt = book.attempt_sign_in(username, password)
        st.session_state[LAST_ATTEMPT] = attempt
        return attempt.outcome == "signed_in"

    model.check_credentials = check


def sign_in_form(auth: stauth.Authenticate, studio: Studio) -> None:
    """The sign-in form; every password is counted and lock-checked in the database first."""
    st.title("Feedback Studio")
    if notice := st.session_state.get(NOTICE):
        st.info(notice)  # kept until the next sign-in: the cookie component may rerun the page once
    if st.session_state.pop(EXPIRE_COOKIE, False):
        auth.cookie_controller.delete_cookie()
    cookie = auth.cookie_controller.get_cookie()  # {username, exp_date} of an earlier sign-in, if any
    from_cookie = bool(cookie)
    if from_cookie:  # set before login(), which reruns the page itself once the cookie signs in: the visit goes on
        st.session_state[SESSION_ID] = sign_in_id(cookie["username"], cookie["exp_date"])
    book = accounts(studio)
    _passwords_checked_in_the_database(auth, book)
    st.session_state.pop(LAST_ATTEMPT, None)
    try:
        auth.login(location="main", key="sign_in", max_login_attempts=None,
                   fields={"Form name": "Sign in", "Login": "Sign in"})
    except LoginError:  # only a cookie gets here now: it names an account that is disabled or gone
        _end_session(auth)
        st.session_state[NOTICE] = "That account can no longer sign in here. Sign in with another account."
        st.rerun()
    status = st.session_state.get("authentication_status")
    if status is False:
        record_failed_sign_in(studio, session_id(), st.session_state.pop(LAST_ATTEMPT, None))
        tries = st.session_state[FAILED_HERE] = st.session_state.get(FAILED_HERE, 0) + 1
        # The same words whether the name exists, is locked, or the password is wrong: they tell nobody
        # which accounts exist. The count is this browser tab's.
        rules = studio.config.auth
        left = rules.max_failed_sign_ins - tries
        warning = (f" {left} more wrong password(s) in a row and the account is locked for "
                   f"{rules.lockout_minutes} minutes." if left > 0 else
                   f" An account is locked for {rules.lockout_minutes} minutes after "
                   f"{rules.max_failed_sign_ins} wrong passwords in a row; an admin can lift it.")
        st.error("Wrong username or password." + warning)
    elif status and from_cookie:
        st.rerun()  # signed in by an existing cookie: nothing to send, open the studio now
    elif status:
        _start_session(studio, auth)
        # Signed in by password: no st.rerun() here, this run must finish so the new cookie reaches the
        # browser; the cookie component then reports back, and that rerun opens the studio.
        st.success("Signed in — opening the studio…")


def signed_in_actor(auth: stauth.Authenticate, studio: Studio) -> Actor | None:
    """The signed-in account of this session after checking it still may sign in, or None."""
    username = st.session_state.get("username") if st.session_state.get("authentication_status") else None
    if not username:
        st.session_state.pop(ACTOR_KEY, None)
        return None
    started = st.session_state.setdefault(SIGNED_IN_AT, time.time())
    expired = time.time() - started > studio.config.auth.session_hours * 3600
    # disabled, expired, signed out elsewhere, password reset, …
    if refusal := session_refusal(studio, session_id(), username, expired):
        _end_session(auth)
        st.session_state[NOTICE] = refusal
        return None
    account = accounts(studio).get(username)
    if st.session_state.get(ACTOR_KEY) is None:  # first run of this sign-in (password or cookie)
        st.session_state.pop(NOTICE, None)
        signed_in(studio, Caller(account.actor, session_id()))
        for key in (SIGNED_OUT_HERE, FAILED_HERE):
            st.session_state.pop(key, None)
    st.session_state[ACTOR_KEY] = {"username": account.username, "role": account.role.value}
    return account.actor


def _end_session(auth: stauth.Authenticate) -> None:
    """Forget the sign-in: the cookie and this session's state (also when the cookie never signed in, e.g. it
    names a disabled account: streamlit-authenticator's logout then raises LogoutError)."""
    try:
        auth.logout(location="unrendered")
    except LogoutError:
        for key in ("authentication_status", "username", "name", "email", "roles"):
            st.session_state[key] = None
        st.session_state["logout"] = True  # as after a sign-out: streamlit-authenticator ignores the cookie now
        st.session_state[EXPIRE_COOKIE] = True  # deleted by the next run, which reaches the browser
    for key in (ACTOR_KEY, SIGNED_IN_AT):
        st.session_state.pop(key, None)


def account_sidebar(auth: stauth.Authenticate, actor: Actor, studio: Studio) -> bool:
    """Who is signed in, and the sign-out button, on every page; True when the person just signed out.

    The caller then shows the sign-in view in the same run, so the cookie deletion reaches the browser.
    """
    with st.sidebar:
        who = st.empty()
        if st.button("Sign out", key="sign_out", width="stretch"):
            sign_out(studio, Caller(actor, session_id()))  # a copy of the cookie no longer signs in either
            _end_session(auth)
            st.session_state[NOTICE] = "You are signed out."
            st.session_state[SIGNED_OUT_HERE] = True  # whoever signs in next starts from Home, not this page
            return True
        who.caption(f"Signed in as **{actor.username}** · {actor.role.value}")
    return False


def issue_pending_cookie(auth: stauth.Authenticate, studio: Studio) -> None:
    """Give the browser the sign-in cookie of a sign-in that did not go through the form (the first admin),
    so a reload keeps them signed in."""
    if st.session_state.pop(ISSUE_COOKIE, False):
        auth.cookie_controller.set_cookie()
        _start_session(studio, auth)


def welcome_notice() -> None:
    """A one-time message for whoever just signed in without the form."""
    if notice := st.session_state.pop(WELCOME, None):
        st.success(notice)


def signed_out_here() -> bool:
    """Whether someone signed out of this browser tab since its last sign-in."""
    return bool(st.session_state.get(SIGNED_OUT_HERE))
