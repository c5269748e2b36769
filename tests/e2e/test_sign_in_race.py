"""A sign-in must not depend on when the cookie component reports.

The cookie component (streamlit-authenticator's cookie manager) tells the server about the browser's cookies
on its own schedule: each of its frames reports once it has loaded, and every report reruns the page. Here a
Playwright route holds the frames' files back and lets them load at chosen moments after the next person's
sign-in was submitted, so a report lands inside the sign-in's own page run, as on a cold or busy machine. Before the fix such a
report cut the run between the password check and the start of the new session: the next person then got
"Please sign in again." (or their click was lost and an earlier wrong password was shown again).
"""

from __future__ import annotations

import re
import time

import jwt
import pytest

from bench.served_app import served_app
from core.accounts.auth import Accounts, Actor, Role
from core.platform.config import AppConfig
from core.platform.store import Store, default_database_url, events
from tests.e2e.test_journey import ADMIN_PASSWORD, ANALYST_PASSWORD, WAIT, Studio

pytestmark = pytest.mark.e2e

#: When the held reports reach the server after the sign-in was submitted (ms): at once, within the page run
#: (the password check takes a few hundred ms), and after it.
DELAYS_MS = (0, 50, 150, 300, 500, 800, 1200)


class SlowComponents:
    """Holds back the files of every component frame the page opens (the cookie component's set, delete and
    read frames) until :meth:`release`, as a cold or busy machine does: a frame can report to the server only
    once it has loaded, by then after the person's next click. (Routing also turns the browser's cache off,
    so every new frame asks again.)"""

    def __init__(self, page) -> None:
        self.holding, self.held = False, []
        page.route(re.compile(r".*/component/.*"), self._route)

    def _route(self, route) -> None:
        if self.holding:
            self.held.append(route)
        else:
            route.continue_()

    def hold(self) -> None:
        self.holding = True

    def release(self) -> int:
        """Let the held files load, in order; how many there were."""
        held, self.held, self.holding = self.held, [], False
        for route in held:
            route.continue_()
        return len(held)


@pytest.fixture(scope="module")
def race_server(tmp_path_factory: pytest.TempPathFactory, e2e_config):
    """An app of its own (the journey starts from an empty workspace) with an admin and an analyst."""
    with served_app(tmp_path_factory.mktemp("race-workspace"), e2e_config) as app:
        accounts = Accounts(Store(default_database_url(app["workspace"])), AppConfig().auth)
        accounts.create_first_admin("root", "Root Admin", "", ADMIN_PASSWORD)
        accounts.create(Actor("root", Role.ADMIN), "ana", "Ana Analyst", "", ANALYST_PASSWORD, Role.ANALYST)
        yield app


def _signed_in_as(studio: Studio, username: str) -> None:
    """The page is the studio of ``username``, and the browser's cookie comes to name them."""
    studio.page.locator('[data-testid="stSidebar"]').get_by_text(f"Signed in as {username}").wait_for(
        state="visible", timeout=WAIT)
    assert "sign in again" not in studio.main_text()
    deadline, named = time.monotonic() + WAIT / 1000, None
    while named != username and time.monotonic() < deadline:
        studio.page.wait_for_timeout(200)
        tokens = [c["value"] for c in studio.page.context.cookies() if c["name"] == AppConfig().auth.cookie_name]
        named = jwt.decode(tokens[0], options={"verify_signature": False})["username"] if tokens else None
    assert named == username, f"the browser's sign-in cookie names {named!r}"


def test_a_sign_in_after_another_accounts_sign_out_survives_late_cookie_reports(browser, race_server, screenshots):
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(WAIT)
    reports = SlowComponents(page)
    s = Studio(page, race_server["url"], screenshots)
    try:
        s.go()
        s.sign_in("root", ADMIN_PASSWORD)
        _signed_in_as(s, "root")
        people = [("ana", ANALYST_PASSWORD), ("root", ADMIN_PASSWORD)]
        held_in_all = 0
        for turn, delay in enumerate(DELAYS_MS):
            username, password = people[turn % 2]
            reports.hold()
            s.sign_out()
            s.fill("Username", username)
            s.fill("Password", password)
            page.get_by_role("button", name="Sign in", exact=True).first.click()
            page.wait_for_timeout(delay)
            held_in_all += reports.release()
            try:
                _signed_in_as(s, username)
            except Exception:
                s.page.screenshot(path=str(s.shots / f"FAILED-sign-in-race-{turn}.png"), full_page=True)
                raise AssertionError(f"turn {turn}: {username}'s sign-in with reports {delay} ms late ended on "
                                     f"{s.main_text()[:300]!r}")
        assert held_in_all > 0, "no component frame was held: the test raced nothing"
        # Signing out printed streamlit-authenticator's KeyError (the cookie's name) into the app's log each time.
        assert f"'{AppConfig().auth.cookie_name}'" not in race_server["log"].read_text()
    finally:
        context.close()


def test_a_late_report_neither_repeats_a_wrong_password_nor_loses_the_right_one(browser, race_server, screenshots):
    """The symptom seen under load: after one wrong password the right one was answered "Wrong username or
    password. 1 more wrong password(s)…" (a report's rerun showed the earlier failure again and counted it)."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(WAIT)
    reports = SlowComponents(page)
    s = Studio(page, race_server["url"], screenshots)
    store = Store(default_database_url(race_server["workspace"]))

    def failures() -> int:
        return len(store.rows(events.select().where(events.c.event_type == "sign_in_failed")))

    try:
        s.go()
        for turn, delay in enumerate(DELAYS_MS):
            s.sign_in("root", ADMIN_PASSWORD)
            _signed_in_as(s, "root")
            failed_before = failures()
            reports.hold()
            s.sign_out()  # the frames of its cookie deletion report only after the sign-ins below
            s.sign_in("ana", "not the password")
            s.see("Wrong username or password. 2 more wrong password(s)")
            s.fill("Username", "ana")
            s.fill("Password", ANALYST_PASSWORD)
            page.get_by_role("button", name="Sign in", exact=True).first.click()
            page.wait_for_timeout(delay)
            assert reports.release() > 0
            try:
                _signed_in_as(s, "ana")
            except Exception:
                raise AssertionError(f"turn {turn}: ana's right password with reports {delay} ms late ended on "
                                     f"{s.main_text()[:300]!r}")
            assert failures() - failed_before == 1, f"turn {turn}"  # the one wrong password, counted once
            assert Accounts(store, AppConfig().auth).get("ana").failed_sign_ins == 0
            s.sign_out()
    finally:
        context.close()
