"""Topics page: group a saved version's texts into topics (a worker does it), look at them, name, merge and drop
them, and save the names as the labels of a new version."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.presentation import charts
from core.presentation.display import when
from core.services.accounts import Permission
from core.services.datasets import DatasetError, DatasetVersion, dataset_versions
from core.services.runs import workers_online
from core.services.topics import (
    GRANULARITY, JobState, TopicError, TopicJob, TopicLabels, TopicResult, cancel_topics, nearest_topic_of_each,
    save_topics_as_labels, split_topic, start_topics, topic_jobs_of, topic_result,
)
from pages.common.widgets import duration, plain, start_page

POLL_SECONDS = 1.0
#: Session keys: whether the page polls a discovery in progress; the notice of a saved version; the discovery to
#: show next (one just made by a split).
POLLING, SAVED, PICK = "topics_polling", "topics_saved", "topics_pick"
GRANULARITY_HELP = ("How large a group must be to count as a topic. 'Fewer, broader' joins close topics; "
                    "'more, narrower' splits them finer. The number of topics is found from the texts either way.")


def choose_version(versions: list[DatasetVersion]) -> DatasetVersion:
    """The version whose texts are grouped: texts without labels first (the usual start), newest first."""
    ordered = {v.ref: v for v in [*reversed([v for v in versions if v.unlabelled]),
                                  *reversed([v for v in versions if not v.unlabelled])]}
    ref = st.selectbox("Texts to group", list(ordered), key="topics_version",
                       format_func=lambda r: f"{r} ({ordered[r].meta['rows']:,} texts"
                                             + (", no labels yet)" if ordered[r].unlabelled else ")"))
    return ordered[ref]


def start_discovery(version: DatasetVersion) -> None:
    """The granularity control and the button that queues a discovery for a worker."""
    granularity = st.radio("Topics", list(GRANULARITY), index=list(GRANULARITY).index("as found"), horizontal=True,
                           key="topics_granularity", help=GRANULARITY_HELP)
    if st.button("Discover topics", type="primary", key="discover_topics"):
        try:
            job = start_topics(studio, caller, version.ref, granularity)
        except (TopicError, DatasetError) as exc:
            st.error(f"Not started: {exc}")
        else:
            st.session_state[POLLING] = True
            st.success(f"Queued: {job.name(when)}. A worker reads and groups the texts; progress shows below.")


def discovery_progress(version: DatasetVersion) -> None:
    """The discoveries of this version still queued or running, with progress, estimate and a cancel button
    (polled while there are any)."""
    jobs = topic_jobs_of(studio, caller, version.ref)
    active = [job for job in jobs if not job.state.finished]
    if not active and st.session_state.get(POLLING):
        st.session_state[POLLING] = False
        st.rerun()  # the whole page: the finished discovery shows below
    if active and not workers_online(studio, caller):
        st.warning("No worker is running, so the discovery waits. Start one with `python -m core worker` "
                   "(`make run` starts one beside the app).")
    for job in active:
        left = f" · about {duration(job.eta_s)} left" if job.eta_s else ""
        progress, cancel = st.columns([5, 1], vertical_alignment="bottom")
        progress.progress(min(max(job.fraction, 0.0), 1.0), text=plain(f"{job.name(when)}: {job.stage}{left}"))
        if cancel.button("Cancel", key=f"cancel_topics:{job.job_id}"):
            cancel_topics(studio, caller, job.job_id)
            st.rerun()


def choose_result(version: DatasetVersion) -> TopicJob | None:
    """The finished discovery to look at (the newest by default); the failed and interrupted ones said."""
    jobs = topic_jobs_of(studio, caller, version.ref)
    for job in jobs[:3]:
        if job.state in (JobState.FAILED, JobState.INTERRUPTED):
            st.error(plain(f"{job.name(when)} {job.state.value}: {job.error}"))
    done = [job for job in jobs if job.state is JobState.DONE]
    if not done:
        if not any(not job.state.finished for job in jobs):
            st.info("No topics found yet for these texts — choose how broad the topics should be and click "
                    "'Discover topics'.")
        return None
    names = {job.job_id: f"{job.name(when)}: {job.topics} topics" for job in done}
    if (picked := st.session_state.pop(PICK, None)) in names:  # a split just made: shown at once
        st.session_state[f"topics_result:{version.ref}"] = picked
    chosen = st.selectbox("Topics found", list(names), format_func=names.get, key=f"topics_result:{version.ref}")
    return next(job for job in done if job.job_id == chosen)


def topic_names(job: TopicJob, result: TopicResult) -> dict[int, str]:
    """Each topic's label name, as the analyst writes it (two with one name merge; an empty name, or 'keep'
    unticked, drops a topic)."""
    st.caption("Name each topic as the label it should become. Give two topics the same name to merge them; "
               "clear a name, or untick 'keep', to drop a topic (its texts stay in the version without a label).")
    names = {}
    for topic in result.found.topics:
        about, name, keep = st.columns([5, 3, 1], vertical_alignment="center")
        about.markdown(f"**{topic.id + 1}** · {topic.size:,} texts · {plain(', '.join(topic.keywords[:6]))}")
        label = name.text_input(f"Label name of topic {topic.id + 1}", value=topic.name, max_chars=64,
                                key=f"topic_name:{job.job_id}:{topic.id}", label_visibility="collapsed")
        kept = keep.checkbox("keep", value=True, key=f"topic_keep:{job.job_id}:{topic.id}")
        names[topic.id] = label if kept else ""
    return names


def look_at_topic(job: TopicJob, version: DatasetVersion, result: TopicResult) -> None:
    """A topic's most typical texts and a few at its edge, and splitting it into the finer topics its texts form
    (a new discovery, shown at once; the first stays as it was)."""
    topics = {t.id: t for t in result.found.topics}
    chosen = st.selectbox("Look at a topic", list(topics), key=f"topics_look:{job.job_id}",
                          format_func=lambda i: f"{i + 1} · {topics[i].name} ({topics[i].size:,} texts)")
    topic = topics[chosen]
    typical, edge = st.columns(2)
    typical.markdown("**Most typical**\n" + "\n".join(f"- {plain(text)}" for text in topic.typical))
    edge.markdown("**At its edge**\n" + "\n".join(f"- {plain(text)}" for text in topic.borderline))
    if st.button(f"Split topic {chosen + 1} into finer topics", key=f"split_topic:{job.job_id}",
                 help="Groups this topic's texts again, finer. The result is a new set of topics (chosen "
                      "above); the names you gave here stay with this one."):
        try:
            with st.spinner(f"Grouping the {topic.size:,} texts of topic {chosen + 1}…"):
                split = split_topic(studio, caller, job.job_id, chosen)
        except TopicError as exc:
            st.error(f"Not split: {exc}")
        else:
            st.session_state[PICK] = split.job_id
            st.rerun()


def left_out(job: TopicJob, result: TopicResult, texts: list[str]) -> list[int | None] | None:
    """The texts that fit no topic, said and shown; the offer to put them in their nearest topic (the nearest
    topic of each, or None when declined)."""
    left = [i for i, topic in enumerate(result.found.assignment) if topic is None]
    if not left:
        return None
    share = len(left) / len(texts)
    st.caption(f"{len(left):,} texts ({share:.0%}) fit no topic: they sit between topics or apart from all. Unless "
               "you place them, they stay in the version without a label.")
    with st.expander(f"Texts in no topic ({len(left):,})"):
        st.dataframe(pd.DataFrame({"text": [texts[i] for i in left[:200]]}), hide_index=True, width="stretch")
    if st.checkbox("Put each of them in its nearest topic", key=f"place_left_out:{job.job_id}"):
        return nearest_topic_of_each(studio, caller, job.job_id)
    return None


def save_labels(job: TopicJob, version: DatasetVersion, names: dict[int, str],
                nearest: list[int | None] | None) -> None:
    """A name and the button that saves the topics' names as the labels of the name's next version."""
    name = st.text_input("Dataset name", value=version.name, key=f"topics_save_name:{job.job_id}",
                         help="Saving the same name again creates its next version.")
    if st.button("Save topics as labels", type="primary", key="save_topic_labels"):
        try:
            with st.spinner("Saving…"):
                saved = save_topics_as_labels(studio, caller, job.job_id, name, TopicLabels(names, nearest))
        except (DatasetError, TopicError) as exc:
            st.error(f"Not saved: {exc}")
        else:
            sources = saved.meta["label_sources"]
            placed = sources.get("nearest topic", 0)
            st.session_state[SAVED] = (
                f"Saved {saved.ref}: {saved.meta['labelled_rows']:,} texts labelled from their topics "
                f"({len(saved.labels)} labels" + (f"; {placed:,} placed in their nearest topic" if placed else "")
                + f"), {saved.meta['unlabelled_rows']:,} left without a label. Next: train on it on the Train page.")
            st.rerun()


def show_result(job: TopicJob, version: DatasetVersion) -> None:
    """What a discovery found: the map, the topics to name, a look inside one, the texts left out, and saving."""
    _, result, texts = topic_result(studio, caller, job.job_id)
    found = result.found
    st.markdown(f"**{len(found.topics)} topics** in {len(texts):,} texts; {found.unassigned:,} fit none "
                f"(the smallest topic has at least {found.smallest_topic} texts).")
    if len(found.topics) <= 2 and job.granularity != "more, narrower":
        st.caption("Only a few broad topics: discover again with 'more, narrower' to see finer ones.")
    names = topic_names(job, result)
    labels = [names.get(t, "") or None if t is not None else None for t in found.assignment]
    st.plotly_chart(charts.topic_map(result.x, result.y, labels, texts, config.topics.map_points,
                                     config.training.seed), width="stretch")
    look_at_topic(job, version, result)
    nearest = left_out(job, result, texts)
    st.subheader("Save the topics as labels")
    save_labels(job, version, names, nearest)


actor, config, studio, caller = start_page(
    "pages/views/topics.py", Permission.MANAGE_DATA, "Topics",
    "No labels yet? Group the texts into topics by meaning, name the topics, and save the names as labels to "
    "train on.")
if notice := st.session_state.pop(SAVED, None):
    st.success(notice)
    st.page_link("pages/views/train.py", label="Go to the Train page", icon=":material/model_training:")
versions = dataset_versions(studio, caller)
if not versions:
    st.info("No texts saved yet — upload a file on the Data page (a column of texts is enough) and save it.")
    st.page_link("pages/views/data.py", label="Go to the Data page", icon=":material/dataset:")
else:
    chosen_version = choose_version(versions)
    start_discovery(chosen_version)
    if any(not job.state.finished for job in topic_jobs_of(studio, caller, chosen_version.ref)):
        st.session_state[POLLING] = True
    st.session_state.setdefault(POLLING, False)
    st.fragment(run_every=POLL_SECONDS if st.session_state[POLLING] else None)(discovery_progress)(chosen_version)
    finished = choose_result(chosen_version)
    if finished is not None:
        show_result(finished, chosen_version)
