"""Sign-in views: the first-admin form, the sign-in form, the session's account and sign-out.

The accounts, lockout, roles and sessions live in ``core`` (``core.services.accounts`` decides whether a
sign-in counts and starts its session row); streamlit-authenticator signs and reads the sign-in cookie, and its
cookie component carries the cookie to and from the browser. Every run re-reads the account, so a disabled
account or a changed role takes effect at once, and a session older than ``auth.session_hours`` ends.

Nothing here may depend on when the cookie component reports. Each report reruns the page, and Streamlit cuts
the run in progress short at its next *yield point*, which is not only drawing an element but also every read or
write of ``st.session_state``. So a sign-in, a failed password and a sign-out are first *decided* (the password
checked, the session row started or ended) and kept on the server for this browser session; then applied to the
session state. A run cut short in between leaves the decision waiting, and the next run applies it before
anything else (:func:`apply_decisions`). The password is checked in the form's callback, which runs before the
page does, and the cookie to set or delete stays pending until the browser confirms it.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime

import streamlit as st
import streamlit_authenticator as stauth
from streamlit.runtime.scriptrunner import get_script_run_ctx

from core.services import Caller, Studio
from core.services.accounts import (
    Actor, AuthError, Role, SignedIn, accounts, cookie_signing_key, create_first_admin, resume_from_cookie,
    session_refusal, sign_in_with_password, sign_out, signed_in, start_session,
)
from core.services.studio import AppConfig

ACTOR_KEY = "fs_actor"
SIGNED_IN_AT = "fs_signed_in_at"
SESSION_ID = "fs_session_id"
NOTICE = "fs_sign_in_notice"
#: Set when someone signs out of this browser tab: the sign-in view then sits at Home's address only.
SIGNED_OUT_HERE = "fs_signed_out_here"
#: A message for whoever was signed in without the form, and when it was set.
WELCOME = "fs_welcome"
#: How long the welcome stays: the cookie component's report reruns the page right after such a sign-in, and a
#: message shown in one run only may never be seen.
WELCOME_SECONDS = 30.0
#: The sign-in cookie's expiry (seconds since the epoch) while the browser has not confirmed it holds it.
PENDING_COOKIE = "fs_pending_cookie"
#: An id of the deletion of the sign-in cookie while the browser has not confirmed it.
EXPIRE_COOKIE = "fs_expire_cookie"
#: The form's answer to the last password tried in this tab, shown until the next one.
SIGN_IN_ERROR = "fs_sign_in_error"
#: Wrong passwords typed in this browser tab (for the warning before a lockout).
FAILED_HERE = "fs_failed_here"
USERNAME_FIELD, PASSWORD_FIELD = "fs_sign_in_username", "fs_sign_in_password"
#: streamlit-authenticator's session keys of a sign-in (its cookie reader and this module share them).
AUTHENTICATOR_KEYS = ("authentication_status", "username", "name", "email", "roles")


def _release(studio: Studio) -> None:
    studio.close()


@st.cache_resource(show_spinner=False, max_entries=2, on_release=_release)
def _studio(settings: str, _config: AppConfig) -> Studio:
    return Studio(_config)


def app_studio(config: AppConfig) -> Studio:
    """The one studio of this server — database pool, training queue, loaded model — shared by every session,
    for one configuration: an edited settings file makes a new studio whose queue and published model see the
    new settings too (the studio's configuration is never changed under them)."""
    return _studio(repr(config), config)


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
        key = cookie_signing_key(studio, configured_cookie_key())
    except AuthError as exc:
        st.error(f"Feedback Studio refuses to start: {exc}.")
        st.stop()
    rules = studio.config.auth
    # No credentials: passwords are checked by core (sign_in_with_password), never by the authenticator.
    auth = stauth.Authenticate({"usernames": {}}, rules.cookie_name, key,
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


@dataclass(frozen=True)
class Decision:
    """What a sign-in, a wrong password or an ending decided for one browser session, not yet applied to its
    session state: a new sign-in (``signed_in``), a wrong password (``error``, with this tab's count), or an
    ended sign-in (``notice``)."""

    signed_in: SignedIn | None = None
    send_cookie: bool = False
    error: str | None = None
    failed_here: int = 0
    notice: str | None = None
    signed_out_here: bool = False


#: Decisions not yet applied, by Streamlit session id (one server process holds its sessions).
_DECISIONS: dict[str, Decision] = {}
_DECISIONS_LOCK = threading.Lock()


def _browser_session() -> str:
    return get_script_run_ctx().session_id


def _decide(decision: Decision) -> None:
    """Keep the decision for this browser session (no yield point: a cut cannot lose it), then apply it."""
    with _DECISIONS_LOCK:
        _DECISIONS[_browser_session()] = decision
    apply_decisions()


def apply_decisions() -> None:
    """Apply this browser session's waiting decision, if any; first thing in every run. Applying is
    idempotent and the decision is dropped only once applied whole, so a run cut short halfway is completed
    by the next one."""
    key = _browser_session()
    with _DECISIONS_LOCK:
        decision = _DECISIONS.get(key)
    if decision is None:
        return
    if decision.signed_in is not None:
        _adopt(decision.signed_in, decision.send_cookie)
    elif decision.error is not None:
        st.session_state[FAILED_HERE] = decision.failed_here
        st.session_state[SIGN_IN_ERROR] = decision.error
    else:
        _end_session(decision.notice, decision.signed_out_here)
    with _DECISIONS_LOCK:
        if _DECISIONS.get(key) is decision:
            del _DECISIONS[key]


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
        _decide(Decision(signed_in=start_session(studio, account), send_cookie=True))
        st.session_state[WELCOME] = (f"Admin account {account.username} created; you are signed in.", time.time())
        st.rerun()


def _adopt(signed: SignedIn, send_cookie: bool) -> None:
    """Make this browser session the sign-in decided; ``authentication_status`` is written last, so a run cut
    short halfway never shows a sign-in whose session id is another's. A password sign-in also owes the
    browser its cookie."""
    account = signed.account
    for key in (ACTOR_KEY, SIGN_IN_ERROR, EXPIRE_COOKIE):  # ACTOR_KEY gone: the next run is this sign-in's first
        st.session_state.pop(key, None)
    if send_cookie:
        st.session_state[PENDING_COOKIE] = signed.expires
    else:
        st.session_state.pop(PENDING_COOKIE, None)
    st.session_state.update({SESSION_ID: signed.session_id, SIGNED_IN_AT: time.time(), "username": account.username,
                             "name": account.name, "email": account.email, "roles": [account.role.value]})
    st.session_state["authentication_status"] = True


def _check_password(studio: Studio) -> None:
    """The sign-in form's submit. A callback, so it runs before the page does; the password is checked and the
    outcome decided before the session state is touched again (see the module's docstring)."""
    username = st.session_state.get(USERNAME_FIELD) or ""
    password = st.session_state.get(PASSWORD_FIELD) or ""
    failed_here = st.session_state.get(FAILED_HERE, 0)
    result = sign_in_with_password(studio, caller(), username, password)
    if result.signed_in is not None:
        _decide(Decision(signed_in=result.signed_in, send_cookie=True))
    else:
        _decide(Decision(error=_wrong_password_message(studio, failed_here + 1), failed_here=failed_here + 1))
    st.session_state[PASSWORD_FIELD] = ""


def _wrong_password_message(studio: Studio, tries: int) -> str:
    """The same words whether the name exists, is locked, or the password is wrong: they tell nobody which
    accounts exist. ``tries`` counts this browser tab's wrong passwords."""
    rules = studio.config.auth
    left = rules.max_failed_sign_ins - tries
    warning = (f" {left} more wrong password(s) in a row and the account is locked for "
               f"{rules.lockout_minutes} minutes." if left > 0 else
               f" An account is locked for {rules.lockout_minutes} minutes after "
               f"{rules.max_failed_sign_ins} wrong passwords in a row; an admin can lift it.")
    return "Wrong username or password." + warning


def _resumed_from_cookie(auth: stauth.Authenticate, studio: Studio) -> bool:
    """Sign in with the cookie the browser brought when this tab connected, if it names a session that still
    counts; a cookie that does not (signed out, ended, disabled account) is dropped with the reason. Never after
    a sign-out in this tab: the cookie the tab connected with is then out of date (the authenticator's reader
    answers False)."""
    token = auth.cookie_controller.get_cookie()
    if not token:
        return False
    outcome = resume_from_cookie(studio, token["username"], token["exp_date"])
    _decide(Decision(notice=outcome) if isinstance(outcome, str) else Decision(signed_in=outcome))
    return True


def sign_in_form(auth: stauth.Authenticate, studio: Studio) -> None:
    """The sign-in form; every password is counted and lock-checked in the database first."""
    st.title("Feedback Studio")
    if notice := st.session_state.get(NOTICE):
        st.info(notice)  # kept until the next sign-in
    if _resumed_from_cookie(auth, studio):
        st.rerun()  # signed in by the cookie, or it was refused: the next run opens the studio or drops it
    with st.form("sign_in"):
        st.subheader("Sign in")
        st.text_input("Username", key=USERNAME_FIELD, autocomplete="username")
        st.text_input("Password", type="password", key=PASSWORD_FIELD, autocomplete="current-password")
        st.form_submit_button("Sign in", on_click=_check_password, args=(studio,))
    if error := st.session_state.get(SIGN_IN_ERROR):
        st.error(error)


def signed_in_actor(studio: Studio) -> Actor | None:
    """The signed-in account of this session after checking it still may sign in, or None."""
    username = st.session_state.get("username") if st.session_state.get("authentication_status") else None
    if not username:
        st.session_state.pop(ACTOR_KEY, None)
        return None
    started = st.session_state.setdefault(SIGNED_IN_AT, time.time())
    expired = time.time() - started > studio.config.auth.session_hours * 3600
    # disabled, expired, signed out elsewhere, password reset, …
    if refusal := session_refusal(studio, session_id(), username, expired):
        _decide(Decision(notice=refusal))
        return None
    account = accounts(studio).get(username)
    if st.session_state.get(ACTOR_KEY) is None:  # first run of this sign-in (password or cookie)
        st.session_state.pop(NOTICE, None)
        signed_in(studio, Caller(account.actor, session_id()))
        for key in (SIGNED_OUT_HERE, FAILED_HERE):
            st.session_state.pop(key, None)
    st.session_state[ACTOR_KEY] = {"username": account.username, "role": account.role.value}
    return account.actor


def _end_session(notice: str | None, signed_out_here: bool) -> None:
    """Forget the sign-in in this tab, say why, and have the browser drop its cookie (sent by
    :func:`sync_cookie`); ``authentication_status`` is cleared first."""
    st.session_state["authentication_status"] = None
    st.session_state["logout"] = True  # the authenticator's flag: its reader ignores the tab's cookie from now on
    for key in AUTHENTICATOR_KEYS:
        st.session_state[key] = None
    st.session_state.setdefault(EXPIRE_COOKIE, secrets.token_hex(4))  # this deletion's id (see sync_cookie)
    for key in (ACTOR_KEY, SIGNED_IN_AT, PENDING_COOKIE):
        st.session_state.pop(key, None)
    st.session_state[NOTICE] = notice
    if signed_out_here:
        st.session_state[SIGNED_OUT_HERE] = True  # whoever signs in next starts from Home, not this page


def account_sidebar(actor: Actor, studio: Studio) -> bool:
    """Who is signed in, and the sign-out button, on every page; True when the person just signed out.

    The caller then shows the sign-in view in the same run.
    """
    with st.sidebar:
        who = st.empty()
        if st.button("Sign out", key="sign_out", width="stretch"):
            sign_out(studio, Caller(actor, session_id()))  # a copy of the cookie no longer signs in either
            _decide(Decision(notice="You are signed out.", signed_out_here=True))
            return True
        who.caption(f"Signed in as **{actor.username}** · {actor.role.value}")
    return False


def sync_cookie(auth: stauth.Authenticate) -> None:
    """Send the browser the sign-in cookie it is owed, or tell it to drop it, in every run until it confirms
    (the component answers True once done): a run cut short before the browser got it sends it again. Each
    cookie and each deletion is a component of its own (keyed by the session, or the deletion's id), so the
    answer of an earlier one never stands for it."""
    model = auth.cookie_controller.cookie_model
    component = model.cookie_manager.cookie_manager  # extra-streamlit-components' cookie manager, called directly
    expires = st.session_state.get(PENDING_COOKIE)
    if expires is not None and st.session_state.get("authentication_status"):
        model.exp_date = expires  # the session's own end: the cookie then names this session (core.accounts.auth.sign_in_id)
        options = {"path": "/", "expires": datetime.fromtimestamp(expires).isoformat(), "sameSite": "strict"}
        if component(method="set", cookie=model.cookie_name, value=model._token_encode(), options=options,
                     key=f"fs_set_cookie_{session_id()}", default=False):
            st.session_state.pop(PENDING_COOKIE, None)
    elif deletion := st.session_state.get(EXPIRE_COOKIE):
        if component(method="delete", cookie=model.cookie_name, key=f"fs_delete_cookie_{deletion}", default=False):
            st.session_state.pop(EXPIRE_COOKIE, None)


def welcome_notice() -> None:
    """The message for whoever just signed in without the form, on every run of its first WELCOME_SECONDS."""
    notice, since = st.session_state.get(WELCOME) or (None, 0.0)
    if notice is None:
        return
    if time.time() - since > WELCOME_SECONDS:
        st.session_state.pop(WELCOME, None)
        return
    st.success(notice)


def signed_out_here() -> bool:
    """Whether someone signed out of this browser tab since its last sign-in."""
    return bool(st.session_state.get(SIGNED_OUT_HERE))
