"""View pieces shared by the pages: the app's settings, the page intro, the report.

Only presentation lives here; every decision is taken in ``core/``.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import NamedTuple

import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitAPIException

from core.services import Caller, Studio
from core.services.accounts import ROLE_PERMISSIONS, Actor, Permission
from core.services.datasets import (
    Finding, IngestError, Preparation, RawTable, Severity, ValidationReport, read_feedback_bytes, read_head,
)
from core.services.publishing import published_model_card
from core.services.studio import PROJECT_ROOT, AppConfig, ConfigError, load_config

from pages.common.session import app_studio, caller, current_actor

CSS_FILE = PROJECT_ROOT / "assets" / "css" / "app.css"
LOGO = PROJECT_ROOT / "assets" / "img" / "logo.svg"
ICON = PROJECT_ROOT / "assets" / "img" / "icon.svg"
ENTRYPOINT = "Home.py"
#: Session keys: set by Home.py on every run; the page a deep link asked for before Home.py ran.
ENTRYPOINT_RAN = "_entrypoint_ran"
PENDING_PAGE = "_pending_page"
SEVERITY_WORDS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "note"}


def app_config() -> AppConfig:
    """The configuration, or a clear stop if the configuration file is wrong."""
    try:
        return load_config()
    except ConfigError as exc:
        st.error(f"The configuration cannot be used: {exc}")
        st.stop()
        raise  # unreachable: st.stop() ends the run


def mark_entrypoint() -> None:
    """Called by Home.py before it runs the chosen page."""
    st.session_state[ENTRYPOINT_RAN] = True


def pending_page() -> str | None:
    """The page a deep link asked for before Home.py had run (Home.py then switches to it)."""
    return st.session_state.pop(PENDING_PAGE, None)


def enter_page(page_path: str, permission: Permission) -> Actor:
    """First line of every page: Home.py (sign-in, navigation, styling) ran, and the role may see this page.

    Pages are routed by Home.py's navigation (they live in pages/views/, where Streamlit's folder mode does not
    look); a page script run on its own is sent through Home.py, which then opens it. The role check is the
    page's own, not only the menu's: a direct URL without the role shows a refusal.
    """
    if not st.session_state.get(ENTRYPOINT_RAN):
        st.session_state[PENDING_PAGE] = page_path
        st.switch_page(ENTRYPOINT)
    actor = current_actor()
    if actor is None:
        st.warning("Please sign in first.")
        st.stop()
    if not actor.can(permission):
        allowed = [role.value for role, granted in ROLE_PERMISSIONS.items() if permission in granted]
        st.error(f"You do not have access to this page: it is for {' and '.join(allowed)} accounts, and you are "
                 f"signed in as {actor.username} ({actor.role.value}).")
        st.stop()
    return actor


class PageContext(NamedTuple):
    """What every page works with: who is signed in, the settings, and the studio whose use cases
    (core.services) the page calls as ``caller``."""

    actor: Actor
    config: AppConfig
    studio: Studio
    caller: Caller


def start_page(page_path: str, permission: Permission, title: str, purpose: str) -> PageContext:
    """The top of every page: the access check, then the title and one sentence on what the page is for."""
    actor = enter_page(page_path, permission)
    config = app_config()
    studio = app_studio(config)
    context = PageContext(actor, config, studio, caller())
    page_intro(title, purpose)
    return context


@st.cache_data(show_spinner=False)
def _stylesheet(path: str, modified: float) -> str:
    return Path(path).read_text(encoding="utf-8")


def load_css() -> None:
    """Inject the app's stylesheet (cached until the file changes) and show the brand logo."""
    css = _stylesheet(str(CSS_FILE), CSS_FILE.stat().st_mtime)
    st.html(f"<style>{css}</style>")
    st.logo(str(LOGO), icon_image=str(ICON), size="large")


def rerun_fragment() -> None:
    """Rerun the fragment this is called in (its table then shows the change just made); the whole page when
    the fragment ran as part of a full run, where Streamlit refuses a fragment-only rerun."""
    try:
        st.rerun(scope="fragment")
    except StreamlitAPIException:
        st.rerun()


def numbered_steps():
    """Numbers a page's steps as they are shown, so a step left out leaves no gap (1, 2, 3, …)."""
    shown = iter(range(1, 100))
    return lambda title: f"{next(shown)} · {title}"


def page_intro(title: str, purpose: str) -> None:
    """Every page opens with its title and one sentence on what it is for."""
    st.title(title)
    st.markdown(f'<p class="fs-intro">{html.escape(purpose)}</p>', unsafe_allow_html=True)


def model_card(studio: Studio, caller: Caller) -> None:
    """The published model's card, folded: what it is, its data, its test figures and its limits (its text
    escapes every label and name, so it is shown as Markdown)."""
    card = published_model_card(studio, caller)
    if card is not None:
        with st.expander("Model card of the published model"):
            st.markdown(card.text)


def form_key(form: str, field: str) -> str:
    """A form field's widget key in the form's current round (see :func:`renew_form`)."""
    return f"{form}:{st.session_state.get(f'{form}:round', 0)}:{field}"


def renew_form(form: str) -> None:
    """Start ``form`` afresh: its fields take new keys, so they come back empty at their first choice. (Writing
    the reset into the old keys is not enough: a rerun the browser sent with the old values, such as the cookie
    component's, can overtake it and put them back; the next account then kept the previous role. A form that
    clears itself in the browser would, on a refusal, show what was typed and send it empty.)"""
    st.session_state[f"{form}:round"] = st.session_state.get(f"{form}:round", 0) + 1


def plain(text: str) -> str:
    """Escape Markdown so user-supplied text (labels, excerpts) shows exactly as written."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~$:])", r"\\\1", text)


def badge(kind: str, text: str) -> str:
    """A small coloured label as HTML; ``text`` is escaped."""
    return f'<span class="fs-badge fs-badge-{kind}">{html.escape(text)}</span>'


def show_finding(finding: Finding) -> None:
    """One finding: severity badge, title and count, the plain-language message, examples."""
    with st.container(border=True):
        st.markdown(
            badge(SEVERITY_WORDS[finding.severity], finding.severity.value)
            + f"<strong>{html.escape(finding.title)}</strong> · {finding.count:,}",
            unsafe_allow_html=True,
        )
        st.markdown(plain(finding.message))
        if finding.examples:
            with st.expander(f"Show examples ({len(finding.examples)})"):
                st.dataframe(pd.DataFrame(finding.examples), hide_index=True, width="stretch")


def show_report(report: ValidationReport) -> None:
    """The whole validation report, errors first."""
    errors, warnings = len(report.errors), len(report.warnings)
    summary = (f"{report.rows_read:,} rows read, {report.usable_rows:,} usable, "
               f"{len(report.label_counts)} labels · {errors} error(s), {warnings} warning(s)")
    if not report.findings:
        st.success(f"{summary}. No problems found.")
        return
    (st.error if errors else st.warning if warnings else st.info)(summary)
    for finding in report.findings:
        show_finding(finding)


def show_fixes(prepared: Preparation) -> None:
    """What each ticked fix changed, one line each, then the report of the data after the fixes."""
    for step in prepared.cleaning.steps:
        changed = ", ".join([f"{step.labels_changed:,} label(s) changed"] * bool(step.labels_changed or not step.rows_removed)
                            + [f"{step.rows_removed:,} row(s) removed"] * bool(step.rows_removed))
        st.markdown(f"- {step.description}: **{changed}**")
    st.markdown("**Report after the fixes**")
    show_report(prepared.report)


def duration(seconds: float | None) -> str:
    """'45 s', '3 min 20 s', '1 h 05 min'; an em dash when unknown."""
    if seconds is None:
        return "—"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


@st.cache_data(show_spinner=False, max_entries=4)
def read_upload(name: str, data: bytes, max_bytes: int, sheet: str | None = None) -> RawTable:
    """An uploaded file (a spreadsheet's ``sheet``, else its first) as a table (cached: Streamlit reruns the page
    on every click)."""
    return read_feedback_bytes(data, name, max_bytes, sheet)


def uploaded_table(label: str, key: str, config: AppConfig) -> tuple[RawTable, str] | None:
    """A file uploader whose file is read as a table; None (with the reason shown) when there is none. Any file
    is taken, so one the studio cannot read is refused in words on the page, not by the browser."""
    uploaded = st.file_uploader(label, key=key)
    if uploaded is None:
        return None
    try:
        table = read_upload(uploaded.name, uploaded.getvalue(), config.data.max_upload_mb * 1_000_000)
    except IngestError as exc:
        st.error(f"This file cannot be used: {exc}")
        return None
    return table, uploaded.file_id


@st.cache_data(show_spinner=False, max_entries=4)
def read_upload_head(name: str, data: bytes, max_bytes: int, rows: int) -> tuple[RawTable, bool]:
    """An upload's first ``rows`` records and whether that is all of it (cached: the page reruns on every click)."""
    return read_head(data, name, max_bytes, rows)


def uploaded_head(label: str, key: str, config: AppConfig, rows: int):
    """A file uploader whose file is read up to ``rows`` records: the upload, that head, and whether it is the
    whole file; None (with the reason shown) when there is none."""
    uploaded = st.file_uploader(label, key=key)
    if uploaded is None:
        return None
    try:
        head, whole = read_upload_head(uploaded.name, uploaded.getvalue(), config.data.max_upload_mb * 1_000_000,
                                       rows)
    except IngestError as exc:
        st.error(f"This file cannot be used: {exc}")
        return None
    return uploaded, head, whole


def field_choice(container, label: str, table: RawTable, guessed: str | None, key: str) -> str:
    """A selectbox over the table's fields, preselecting the guessed one."""
    columns = table.columns
    return container.selectbox(label, columns, index=columns.index(guessed) if guessed in columns else 0, key=key)
