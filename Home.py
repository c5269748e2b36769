"""Feedback Studio: the entry point. Builds the navigation and shows the overview."""

from __future__ import annotations

import streamlit as st

from core.overview import summarise_workspace
from pages._widgets import app_config, app_workspace, load_css, mark_entrypoint, page_intro, pending_page

st.set_page_config(page_title="Feedback Studio", page_icon="💬", layout="wide")


def overview() -> None:
    """The Home page: how the studio works and what the workspace holds now."""
    page_intro("Feedback Studio",
               "Turn labelled customer feedback into a classifier: prepare data, train and compare models, "
               "then classify new feedback.")
    summary = summarise_workspace(app_workspace(app_config()))
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
        st.markdown(f"**Published model:** {published.title} on {published.dataset_ref}{score} "
                    f"(`{published.run_id}`, by {summary.published.published_by}).")

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
                   f"{len(latest.labels)} labels, saved {latest.meta['created_at']}.")
    st.page_link("pages/data.py", label="Go to the Data page", icon=":material/dataset:")


load_css()
navigation = st.navigation([
    st.Page(overview, title="Home", icon=":material/home:", default=True),
    st.Page("pages/data.py", title="Data", icon=":material/dataset:"),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("pages/evaluate.py", title="Evaluate", icon=":material/analytics:"),
])
mark_entrypoint()
if (asked_for := pending_page()) is not None:
    st.switch_page(asked_for)
navigation.run()
