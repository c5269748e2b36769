"""Admin page: session logs, monitoring, accounts, and users' corrections back into training."""

from __future__ import annotations

from datetime import datetime, time, timezone

import streamlit as st

from core.presentation import charts
from core.presentation.display import rate, when
from core.presentation.exports import to_safe_csv
from core.services import Caller, Studio
from core.services.accounts import (
    ROLE_MEANINGS, AuthError, Permission, Role, accounts, change_account, create_account,
)
from core.services.datasets import CleaningOptions, DatasetError, dataset_version
from core.services.feedback import (
    accepted as accepted_corrections, accepted_file, merge_bases, merge_preview, merge_warning, new_examples_note,
    pending as pending_corrections, review, save_merged,
)
from core.services.logs import (
    EventType, agreement_over_time, default_period, feedback_agreement, label_drift, model_usage, readable_events,
    review_share_over_time, served_predictions, session_events, session_log, tag_rates_over_time,
    verdicts as given_verdicts, volume_over_time, with_model_names,
)
from core.services.publishing import published_run
from core.services.review import figures as queue_figures
from core.services.runs import run_namer, runs
from core.services.tokens import create_token, list_tokens, revoke_token
from pages.common.widgets import form_key, renew_form, rerun_fragment, show_fixes, show_report, start_page

ANY = "(any)"
#: Column widths (pixels) of the session log, so that every column fits the page's width (a cell cut short shows
#: whole on hover; the session's id in full in the timeline's list below).
LOG_WIDTHS = {"time": 130, "who": 80, "role": 70, "what": 200, "details": 300, "session": 90}


@st.fragment  # its widgets rerun this tab only, not the other three
def log_view(studio: Studio, caller: Caller) -> None:
    """Every recorded action, filterable, with one session's timeline and a CSV export."""
    filters = st.columns(4)
    users = [ANY] + sorted({a.username for a in accounts(studio).all()})
    username = filters[0].selectbox("User", users, key="log_user")
    kinds = filters[1].multiselect("Event types", [e.value for e in EventType], key="log_types")
    period = filters[2].date_input("Between", value=(), key="log_dates", help="Leave empty for all time.")
    contains = filters[3].text_input("Contains", key="log_text", placeholder="run id, file name, label…")
    since = until = None
    if len(period) == 2:
        since = datetime.combine(period[0], time.min, tzinfo=timezone.utc)
        until = datetime.combine(period[1], time.max, tzinfo=timezone.utc)
    frame = session_log(studio, caller, username=None if username == ANY else username, event_types=kinds or None,
                        since=since, until=until, contains=contains or None)
    st.caption(f"{len(frame):,} event(s), newest first.")
    named = run_namer(runs(studio, caller))  # runs by name, as people read them
    st.dataframe(readable_events(frame, named), hide_index=True, width="stretch", height=360,
                 column_config={column: st.column_config.Column(width=width) for column, width in LOG_WIDTHS.items()})
    st.download_button("Download these events (CSV)", to_safe_csv(frame), "session-log.csv", "text/csv",
                       key="download_log")
    sessions = [s for s in frame["session_id"].dropna().unique()]
    if sessions:
        def session_label(session: str) -> str:
            rows = frame[frame.session_id == session]
            who = ", ".join(sorted(set(rows.username.dropna()))) or "nobody signed in"
            return f"{who} · from {when(rows.time.min())} · {len(rows)} event(s) · {session}"

        chosen = st.selectbox("Timeline of one visit (a sign-in and what followed)", sessions, key="log_session",
                              format_func=session_label)
        timeline = readable_events(session_events(studio, caller, chosen), named)
        st.dataframe(timeline[["time", "who", "what", "details"]], hide_index=True, width="stretch",
                     column_config={column: st.column_config.Column(width=width)
                                    for column, width in LOG_WIDTHS.items() if column != "session"})


@st.fragment
def monitoring(studio: Studio, caller: Caller) -> None:
    """How the published model is used and how its answers compare with what it was trained on."""
    log = served_predictions(studio, caller)
    if log.empty:
        st.info("No predictions yet — they appear here once people classify feedback on the Classify page.")
        return
    periods = ["h", "D"]
    freq = st.radio("Per", periods, index=periods.index(default_period(log)), horizontal=True, key="monitor_freq",
                    format_func={"h": "hour", "D": "day"}.get, help="Chosen from how long the log spans.")
    named = run_namer(runs(studio, caller))
    names = {run_id: named(run_id) for run_id in log["run_id"].unique()}
    scored = log[log["status"] == "ok"]
    minimum = studio.config.classify.min_cases_for_rate
    enough = f"A percentage is shown from {minimum} cases; below that, the counts alone."
    cards = st.columns(4)
    cards[0].metric("Predictions", f"{len(log):,}")
    cards[1].metric("Needing review", rate(int(scored["needs_review"].sum()), len(scored), minimum),
                    help="Predictions less confident than the review threshold. " + enough)
    verdicts = given_verdicts(studio, caller)
    cards[2].metric("Feedback received", f"{len(verdicts):,}")
    cards[3].metric("Feedback agreement", rate(int(verdicts["is_correct"].sum()) if len(verdicts) else 0,
                                               len(verdicts), minimum),
                    help="Feedback saying the prediction was right. " + enough)
    queued = queue_figures(studio, caller)
    st.caption(f"Review queue: {queued['open']:,} waiting, {queued['labelled']:,} labelled"
               + (f", the labellers agreed with the model on {rate(queued['agreeing'], queued['labelled'], minimum)}"
                  if queued["labelled"] else "")
               + f", {queued['confident_mistakes']:,} confident mistake(s) found"
               + (f"; the model in use gets {queued['next_model_accuracy']:.0%} of the "
                  f"{queued['next_model_texts']:,} texts labelled under earlier models right"
                  if queued["next_model_accuracy"] is not None else "") + ".")
    left, right = st.columns(2)
    left.plotly_chart(charts.prediction_volume(with_model_names(volume_over_time(log, freq), names), freq),
                      width="stretch", key="volume")
    right.plotly_chart(charts.review_share(review_share_over_time(log, freq), freq), width="stretch", key="review")
    left, right = st.columns(2)
    usage = with_model_names(model_usage(log).merge(feedback_agreement(verdicts), on="run_id", how="left"), names)
    left.plotly_chart(charts.model_usage(usage), width="stretch", key="usage")
    if len(verdicts):
        right.plotly_chart(charts.agreement_over_time(agreement_over_time(verdicts, freq), freq), width="stretch",
                           key="agreement")
    else:
        right.info("No feedback yet — the agreement rate appears once users mark predictions right or wrong.")
    record = published_run(studio, caller)
    try:
        version = dataset_version(studio, caller, record.dataset_ref) if record is not None else None
    except DatasetError:
        version = None
        st.caption(f"The published run's dataset {record.dataset_ref} was deleted, so the label mix cannot be "
                   "compared with its training data.")
    if version is not None:
        recent = log[log["run_id"] == record.run_id].tail(1000)
        drift, distance = label_drift(recent, version.meta["split_counts"]["train"], tags=version.multi_label)
        st.plotly_chart(charts.label_mix(drift, distance), width="stretch", key="drift")
        st.caption("The distance is 0 when recent predictions have the training data's "
                   + ("tag mix (each tag's share of the tags given)" if version.multi_label else "label mix")
                   + " and 1 when they share nothing; a rising value means the feedback coming in has changed.")
        if version.multi_label:
            st.plotly_chart(charts.tag_rates(tag_rates_over_time(log[log["run_id"] == record.run_id], freq), freq),
                            width="stretch", key="tag_rates")
    st.markdown("**Per model**")
    st.dataframe(usage[["model", *[c for c in usage.columns if c not in ("model", "run_id")], "run_id"]],
                 hide_index=True, width="stretch",
                 column_config={"agreement": st.column_config.ProgressColumn(min_value=0, max_value=1, format="%.2f"),
                                "run_id": st.column_config.TextColumn("run id")})


#: Session keys: the message of the last account change, the fields it asks to empty on the next run, and why
#: the last new account was refused.
ACCOUNT_NOTICE, CLEAR_FIELDS, CREATE_REFUSAL = "account_notice", "account_clear_fields", "account_refusal"
#: What the new-account form returns to after each creation: empty fields, and the least privileged role.
NEW_ACCOUNT, NEW_TOKEN = "new_account", "new_token"  # the forms that start afresh after each creation
#: The role lists start at the least privileged role, which is also every form's first choice.
ROLE_HELP = " · ".join(f"{role.value}: {meaning}" for role, meaning in ROLE_MEANINGS.items())


def create_from_form(studio: Studio, caller: Caller) -> None:
    """The new-account form's submit, run as its callback: the account is created and the form starts afresh
    (empty, at the least privileged role); a refusal keeps what was typed."""
    field = st.session_state
    try:
        account = create_account(studio, caller, field[form_key(NEW_ACCOUNT, "username")],
                                 field[form_key(NEW_ACCOUNT, "name")], "", field[form_key(NEW_ACCOUNT, "password")],
                                 Role(field[form_key(NEW_ACCOUNT, "role")]))
    except AuthError as exc:
        field[CREATE_REFUSAL] = f"Not created: {exc}."
        return
    renew_form(NEW_ACCOUNT)
    field[ACCOUNT_NOTICE] = f"Created {account.username} ({account.role.value}): {ROLE_MEANINGS[account.role]}."


@st.fragment
def accounts_admin(studio: Studio, caller: Caller) -> None:
    """List, create, change role, reset password, disable/enable; the last admin is protected.

    A change reruns this tab at once, so the table and the lists show it; a refused
    form keeps what was typed."""
    book = accounts(studio)
    if notice := st.session_state.pop(ACCOUNT_NOTICE, None):
        (st.error if notice.startswith("Not changed") else st.success)(notice)
    if cleared := st.session_state.pop(CLEAR_FIELDS, None):  # after a change: reset what it used
        st.session_state.update(cleared)
    st.dataframe([{"username": a.username, "name": a.name, "role": a.role.value,
                   "state": "disabled" if a.disabled else ("locked" if a.locked() else "active"),
                   "created": when(a.created_at), "created by": a.created_by or "—"}
                  for a in book.all()], hide_index=True, width="stretch")
    create, change = st.columns(2)
    with create.form("create_account"):
        st.markdown("**New account**")
        st.text_input("Username", key=form_key(NEW_ACCOUNT, "username"))
        st.text_input("Full name", key=form_key(NEW_ACCOUNT, "name"))
        st.selectbox("Role", [r.value for r in ROLE_MEANINGS], key=form_key(NEW_ACCOUNT, "role"), help=ROLE_HELP)
        st.text_input("Initial password", type="password", key=form_key(NEW_ACCOUNT, "password"))
        st.form_submit_button("Create account", on_click=create_from_form, args=(studio, caller))
        if refusal := st.session_state.pop(CREATE_REFUSAL, None):
            st.error(refusal)  # what was typed stays
    with change.container(border=True):
        st.markdown("**Change an account**")
        target = st.selectbox("Account", [a.username for a in book.all()], key="edit_username")
        current = book.get(target)
        new_role = st.selectbox("Role", [r.value for r in Role], index=[r.value for r in Role].index(current.role.value),
                                key=f"edit_role:{target}")
        new_password = st.text_input("New password (leave empty to keep)", type="password", key=f"edit_pw:{target}")
        disabled = st.checkbox("Disabled (cannot sign in)", value=current.disabled, key=f"edit_disabled:{target}")
        if st.button("Save changes", key="edit_save"):
            change = change_account(studio, caller, target, Role(new_role), new_password, disabled)
            changes = change.done
            refusal = change.refusal and (f"Not changed: {change.refusal}"
                                          + (f" (done before it: {', '.join(changes)})." if changes else "."))
            if not changes:
                (st.error if refusal else st.info)(refusal or "Nothing to change.")  # what was typed stays
                return
            st.session_state[ACCOUNT_NOTICE] = refusal or f"{target}: {', '.join(changes)}."
            st.session_state[CLEAR_FIELDS] = {f"edit_pw:{target}": ""}
            rerun_fragment()  # the table and the list show the change at once


TOKEN_SECRET, TOKEN_REFUSAL = "token_secret_once", "token_refusal"


def create_token_from_form(studio: Studio, caller: Caller) -> None:
    """The token form's submit, as its callback (see :func:`create_from_form`): the secret to show once, and the
    form afresh (an empty name, the least privileged role)."""
    field = st.session_state
    try:
        _, secret = create_token(studio, caller, field[form_key(NEW_TOKEN, "account")],
                                 field[form_key(NEW_TOKEN, "name")], Role(field[form_key(NEW_TOKEN, "role")]))
    except AuthError as exc:
        field[TOKEN_REFUSAL] = f"Not created: {exc}."
        return
    renew_form(NEW_TOKEN)
    field[TOKEN_SECRET] = secret


@st.fragment
def api_tokens_admin(studio: Studio, caller: Caller) -> None:
    """Personal tokens for the HTTP API: create one for an account (its secret shown once), list, revoke."""
    st.markdown("**API tokens** — for systems that classify through the HTTP API "
                f"(`POST /v1/classify`, docs at `http://<server>:{studio.config.api.port}/docs`).")
    if secret := st.session_state.pop(TOKEN_SECRET, None):
        st.success("Token created. Copy it now: it is shown only this once (only its hash is stored).")
        st.code(secret, language=None)
    tokens = list_tokens(studio, caller)
    if tokens:
        st.dataframe([{"name": t.name, "account": t.username, "role": t.role.value,
                       "state": "active" if t.active else f"revoked {when(t.revoked_at)}",
                       "created": when(t.created_at), "last used": when(t.last_used_at) if t.last_used_at else "never",
                       "id": t.id} for t in tokens], hide_index=True, width="stretch")
    create, revoke = st.columns(2)
    with create.form("create_token"):
        st.selectbox("Account", [a.username for a in accounts(studio).all() if not a.disabled], key=form_key(NEW_TOKEN, "account"))
        st.text_input("What will use it", key=form_key(NEW_TOKEN, "name"), placeholder="e.g. CRM nightly sync")
        st.selectbox("Role", [r.value for r in ROLE_MEANINGS], key=form_key(NEW_TOKEN, "role"),
                     help="Never more than the account's own role; a user token can classify and give "
                          "feedback, which is all the API does today.")
        st.form_submit_button("Create token", on_click=create_token_from_form, args=(studio, caller))
        if refusal := st.session_state.pop(TOKEN_REFUSAL, None):
            st.error(refusal)
    active = {t.id: t for t in tokens if t.active}
    with revoke.container(border=True):
        chosen = st.selectbox("Token", list(active), key="token_revoke_pick", index=None,
                              format_func=lambda i: f"{active[i].name} · {active[i].username}",
                              placeholder="Choose a token to revoke")
        if st.button("Revoke", key="token_revoke", disabled=chosen is None):
            try:
                revoke_token(studio, caller, chosen)
            except AuthError as exc:  # revoked in another tab meanwhile
                st.error(f"Not revoked: {exc}.")
                return
            rerun_fragment()


@st.fragment
def feedback_review(studio: Studio, caller: Caller) -> None:
    """Accept or reject users' corrections; turn the accepted ones into a new dataset version."""
    waiting = pending_corrections(studio, caller)
    examples = accepted_corrections(studio, caller)
    st.markdown(f"**{len(waiting):,} correction(s) waiting for review** · {new_examples_note(studio, caller, examples)}")
    if waiting:
        st.dataframe([{"id": f.id, "time": when(f.time), "user": f.username, "text": f.text,
                       "predicted": f.predicted, "should be": f.correct_label,
                       "verdict": "correct" if f.is_correct else "wrong"} for f in waiting],
                     hide_index=True, width="stretch")
        by_id = {f.id: f for f in waiting}
        chosen = st.multiselect("Corrections to review", list(by_id), key="feedback_pick",
                                format_func=lambda i: f"#{i} · {by_id[i].correct_label} · {by_id[i].text[:50]}")
        accept, reject = st.columns(2)
        for column, accepted, label in ((accept, True, "Accept selected"), (reject, False, "Reject selected")):
            if column.button(label, disabled=not chosen, key=f"review:{accepted}"):
                changed = review(studio, caller, chosen, accepted)
                st.session_state["review_notice"] = f"{changed} correction(s) {'accepted' if accepted else 'rejected'}."
                st.rerun()
    if notice := st.session_state.pop("review_notice", None):
        st.success(notice)
    st.markdown(f"**{len(examples):,} accepted example(s)** in the training format.")
    if not examples:
        return
    st.download_button("Download accepted examples (JSONL)", accepted_file(studio, caller), "accepted-feedback.jsonl",
                       "application/json", key="download_accepted")
    bases = merge_bases(studio, caller)
    if not bases.refs:
        return
    st.markdown("**Merge into a new dataset version**")
    base_ref = st.selectbox("Add the accepted examples to", bases.refs, index=bases.refs.index(bases.default),
                            key="merge_base", format_func=lambda ref: f"{ref} (the published model's data)"
                            if ref == bases.published else ref)
    options = CleaningOptions(drop_duplicates=st.checkbox("Drop duplicates (keep the first copy)", value=True,
                                                          key="merge_dedupe"),
                              drop_conflicts=st.checkbox("Drop texts with conflicting labels", key="merge_conflicts"))
    with st.spinner("Validating the merged data…"):
        preview = merge_preview(studio, caller, base_ref, options)
    prepared, base = preview.prepared, preview.base
    show_report(prepared.raw_report)  # what the merged data holds: duplicates, conflicts, …
    if prepared.cleaning.steps:
        show_fixes(prepared)
    name = st.text_input("New dataset name", value=base.name, key=f"merge_name:{base.ref}",  # follows the base
                         help="The same name as the base creates its next version.").strip()
    warning = merge_warning(studio, caller, name, preview)
    confirmed = True
    if warning:
        st.warning(warning)
        confirmed = st.checkbox(f"Yes, save it as the next version of {name}", key=f"merge_confirm:{base.ref}:{name}")
    if st.button("Save merged version", type="primary", disabled=not (prepared.ready and confirmed),
                 key="merge_save"):
        try:
            saved = save_merged(studio, caller, name, preview)
        except DatasetError as exc:
            st.error(f"Not saved: {exc}")
        else:
            st.success(f"Saved {saved.ref} with {saved.meta['rows']:,} examples. Train a new run on it on the "
                       "Train page.")


actor, config, studio, caller = start_page(
    "pages/views/admin.py", Permission.VIEW_LOGS, "Admin",
    "See who did what and when, how the published model behaves in use, manage accounts, and "
    "turn users' corrections into training data for the next model.")
logs, monitor, people, corrections = st.tabs(["Session log", "Monitoring", "Users", "Feedback review"])
with logs:
    log_view(studio, caller)
with monitor:
    monitoring(studio, caller)
with people:
    accounts_admin(studio, caller)
    st.divider()
    api_tokens_admin(studio, caller)
with corrections:
    feedback_review(studio, caller)
