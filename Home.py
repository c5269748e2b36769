"""Feedback Studio: the entry point. Signs people in, builds their navigation, shows the overview."""

from __future__ import annotations

import logging
from pathlib import Path

import streamlit as st

# The first paint comes before the studio's modules load (seconds on a cold server): the title and a line saying
# it is starting, instead of a blank page.
st.set_page_config(page_title="Feedback Studio", page_icon="💬", layout="wide")
starting = st.empty()
starting.caption("Feedback Studio is starting…")

from core.presentation.display import when  # noqa: E402 (after the first paint, above)
from core.services.accounts import Actor, Permission, accounts, report_page_error
from core.services.logs import my_predictions, recent_activity as recent_milestones
from core.services.overview import workspace_summary
from core.services.runs import run_namer
from core.services.studio import LOG_FILE, start_logging
from pages.common.session import (
    account_sidebar, app_studio, apply_decisions, authenticator, caller, current_actor, first_admin_setup,
    sign_in_form, signed_in_actor, signed_out_here, sync_cookie, welcome_notice,
)
from pages.common.widgets import (
    app_config, load_css, mark_entrypoint, model_card, page_intro, pending_page, plain,
)

starting.empty()

log = logging.getLogger("Home")

#: The pages, in the order of the journey, with the permission each needs (checked again by the page itself).
PAGES = [
    ("pages/views/data.py", "Data", ":material/dataset:", Permission.MANAGE_DATA),
    ("pages/views/topics.py", "Topics", ":material/hub:", Permission.MANAGE_DATA),
    ("pages/views/label.py", "Label", ":material/edit_note:", Permission.MANAGE_DATA),
    ("pages/views/train.py", "Train", ":material/model_training:", Permission.TRAIN),
    ("pages/views/evaluate.py", "Evaluate", ":material/analytics:", Permission.EVALUATE),
    ("pages/views/classify.py", "Classify", ":material/label:", Permission.CLASSIFY),
    ("pages/views/admin.py", "Admin", ":material/admin_panel_settings:", Permission.VIEW_LOGS),
]


def overview() -> None:
    """The Home page: for people who classify, the model they use and their own work; for the others, the
    workspace and where the journey continues."""
    actor = current_actor()
    summary = workspace_summary(studio, caller())
    if actor is not None and not actor.can(Permission.MANAGE_DATA):
        classifier_home(summary)
        return
    page_intro("Feedback Studio",
               "Turn labelled customer feedback into a classifier: prepare data, train and compare models, "
               "then classify new feedback.")
    welcome_notice()
    datasets, versions, runs, training = st.columns(4)
    datasets.metric("Datasets", len(summary.dataset_names))
    versions.metric("Saved versions", len(summary.datasets))
    runs.metric("Trained runs", len(summary.finished_runs))
    training.metric("Training now", len(summary.active_runs))
    published = summary.published_run
    if published is None:
        st.caption("No model is published yet: train some runs, compare them on the Evaluate page and publish one.")
    else:
        macro_f1 = (published.test_metrics or {}).get("macro_f1")
        score = f", test macro-F1 {macro_f1:.3f}" if macro_f1 is not None else ""
        st.markdown(f"**Published model:** {plain(published.name)}{score} (published by "
                    f"{plain(summary.published.published_by)}).")
        model_card(studio, caller())

    st.subheader("How it works")
    steps = [
        ("1 · Data", "Upload a JSONL or CSV file of labelled feedback (or load the demo set), read the "
                     "validation report, choose fixes, and save a clean version split into train, "
                     "validation and test."),
        ("2 · Train", "Train fast baselines and fine-tune a transformer on a saved version."),
        ("3 · Evaluate", "Compare the runs on the same test split and publish the best one."),
        ("4 · Classify", "Score new feedback, one text or a whole file, and correct mistakes."),
    ]
    for title, text in steps:
        st.markdown(f'<div class="fs-step"><strong>{title}</strong> — {text}</div>', unsafe_allow_html=True)

    latest = summary.latest_dataset
    if latest is None:
        st.info("No dataset yet — upload one on the Data page, or load the demo set there.")
    else:
        st.success(f"Latest dataset: {latest.ref} · {latest.meta['rows']:,} examples, "
                   f"{len(latest.labels)} labels, saved {when(latest.meta['created_at'])}.")
    next_step(summary)
    recent_activity(summary)


def classifier_home(summary) -> None:
    """A user's Home: the model in use in plain words, a way to classify, their latest predictions."""
    page_intro("Feedback Studio", "Sort customer feedback by topic: paste one text or upload a file, and tell us "
                                  "when a label is wrong.")
    published = summary.published_run
    if published is None:
        st.info("No model is in use yet: an analyst publishes one, then you can classify feedback here.")
        return
    metrics = published.test_metrics or {}
    if "subset_accuracy" in metrics:  # a tagger: none, one or several topics per text
        does = f"tags feedback with any of {len(published.labels)} topics (none, one or several per text)"
        right = (f" On feedback it had not seen, it gave exactly the right topics to {metrics['subset_accuracy']:.0%} "
                 "of the texts.")
    else:
        does = f"sorts feedback into {len(published.labels)} topics"
        accuracy = metrics.get("accuracy")
        right = f" On feedback it had not seen, it was right {accuracy:.0%} of the time." if accuracy is not None else ""
    st.markdown(f"**The model in use** {does}: " + ", ".join(plain(label) for label in published.labels) + f".{right}")
    st.caption(f"{plain(published.name)}, published by {plain(summary.published.published_by)} on "
               f"{when(summary.published.published_at)}.")
    st.page_link("pages/views/classify.py", label="Classify feedback", icon=":material/label:")
    mine = my_predictions(studio, caller())
    st.subheader("Your latest predictions")
    if mine.empty:
        st.caption("None yet — what you classify shows here.")
        return
    st.dataframe(mine.assign(time=mine["time"].map(when))[
                     ["time", "label", "score", "needs_review", *(["text"] if mine["text"].notna().any() else [])]]
                 .rename(columns={"score": "confidence", "needs_review": "needs review"}),
                 hide_index=True, width="stretch",
                 column_config={"confidence": st.column_config.ProgressColumn(format="%.2f", min_value=0,
                                                                              max_value=1)})


def next_step(summary) -> None:
    """A link to where the journey continues, if this person may go there."""
    step = summary.next_step(current_actor())
    if step is not None:
        st.page_link(step[0], label=step[1], icon=":material/arrow_forward:")


def recent_activity(summary) -> None:
    """The latest milestones in the workspace: datasets, finished runs, publications (runs named from the
    summary's reading of the run folders)."""
    milestones = recent_milestones(studio, caller(), run_name=run_namer(summary.runs))
    if not milestones:
        return
    st.subheader("Recent activity")
    for item in milestones:
        st.markdown(f"- {when(item.time)} · **{plain(item.username)}** · {item.action} {plain(item.subject)}")


def signed_in_navigation(actor: Actor):
    """Every page is routable (so a direct URL gets the page's own refusal); only allowed ones are listed."""
    pages = [st.Page(overview, title="Home", icon=":material/home:", default=True)]
    pages += [st.Page(path, title=title, icon=icon, visibility="visible" if actor.can(permission) else "hidden")
              for path, title, icon, permission in PAGES]
    return st.navigation(pages)


def only_view(view, title: str, at_every_address: bool = True):
    """Set-up or sign-in at every page's address, so the page asked for opens once signed in; after a
    sign-out only at Home's (the address the browser shows moves there), so the next person starts at Home."""
    pages = [st.Page(view, title=title, default=True)]
    if at_every_address:
        pages += [st.Page(view, title=page_title, url_path=Path(path).stem) for path, page_title, _, _ in PAGES]
    return st.navigation(pages, position="hidden")


load_css()
config = app_config()
studio = app_studio(config)
start_logging(config)

apply_decisions()  # a sign-in or sign-out decided in a run that was cut short
if not accounts(studio).any_accounts():
    navigation = only_view(lambda: first_admin_setup(studio), "Set up")
    actor = None
else:
    auth = authenticator(studio)
    actor = signed_in_actor(studio)
    if actor is not None and account_sidebar(actor, studio):
        actor = None  # signed out just now
    sync_cookie(auth)  # after every sign-in and sign-out this run may have decided
    if actor is None:
        navigation = only_view(lambda: sign_in_form(auth, studio), "Sign in",
                               at_every_address=not signed_out_here())
    else:
        navigation = signed_in_navigation(actor)
mark_entrypoint()
if actor is not None and (asked_for := pending_page()) is not None:
    st.switch_page(asked_for)
try:
    navigation.run()
except Exception as error:  # st.stop / st.rerun are BaseExceptions and pass through
    log.exception("page %s failed", navigation.title)
    report_page_error(studio, caller(), navigation.title, error)
    st.error("Something went wrong on this page and it could not finish. The details are in the server log "
             f"({LOG_FILE} in the workspace's logs folder); try again, or tell an admin what you were doing.")
