"""Label page: label the texts that teach the model most, a batch at a time, each shown with the current model's
guess; every few labels a model is retrained in the background, and the learning curve says when more labels
stop helping."""

from __future__ import annotations

from typing import Any, Callable

import streamlit as st

from core.presentation import charts
from core.services.accounts import Permission
from core.services.datasets import DatasetError, DatasetVersion
from core.services.labelling import (
    MAX_DESCRIPTION, MAX_LABEL, Guesser, Proposal, describe_labels, descriptions, label_texts, labelling_versions,
    labels_offered, learning_curve, more_labels_verdict, new_label, next_batch, retraining, save_and_retrain, waiting,
)
from core.services.runs import model_kinds, workers_online
from pages.common.widgets import plain, start_page

#: Session keys: the notice of what the last batch did; the version to show next (one a retrain just saved);
#: whether the page polls a retrain in progress; the batch on screen (per version), kept until it is answered.
NOTICE, PICK, POLLING, SHOWN = "label_notice", "label_pick", "label_polling", "label_shown"
POLL_SECONDS = 2.0
SKIP = "— skip (not sure / none fits) —"


def choose_version(versions: list[DatasetVersion]) -> DatasetVersion:
    """The version to label, newest first (the one a retrain just saved, once it is made)."""
    ordered = {v.ref: v for v in reversed(versions)}
    if (picked := st.session_state.pop(PICK, None)) in ordered:
        st.session_state["label_version"] = picked
    ref = st.selectbox("Texts to label", list(ordered), key="label_version",
                       format_func=lambda r: f"{r} ({ordered[r].meta.get('labelled_rows', 0):,} of "
                                             f"{ordered[r].meta['rows']:,} texts labelled)")
    return ordered[ref]


def batch_on_screen(version: DatasetVersion) -> tuple[Guesser, list[Proposal]]:
    """The batch being labelled: the one already shown until it is answered (a retrain that finishes meanwhile
    must not swap the texts under the person's choices), else the next one."""
    shown = st.session_state.setdefault(SHOWN, {})
    if version.ref not in shown:
        with st.spinner("Reading the texts and the current model's guesses…"):
            shown[version.ref] = next_batch(studio, caller, version.ref)
    return shown[version.ref]


def where_it_stands(version: DatasetVersion, guesser: Guesser) -> int:
    """Where the labels of this version came from, what waits to be saved, and which model guesses; the labels
    kept and not saved yet."""
    meta, settings = version.meta, config.labelling
    sources = meta.get("label_sources", {})
    kept, open_texts = waiting(studio, caller, version.ref)
    retrain = model_kinds()[settings.retrain_kind].title
    st.markdown(f"{meta.get('labelled_rows', 0):,} of {meta['rows']:,} texts have a label: "
                f"{sources.get('person', 0):,} from people, "
                f"{sources.get('topic', 0) + sources.get('nearest topic', 0):,} from topics. "
                f"{open_texts:,} texts no person has labelled are left to ask about.")
    st.caption(f"Guesses by: {plain(guesser.name)}. The texts asked about are the ones it is least sure of, each "
               f"from a different region of meaning. Every {settings.retrain_every} labels are saved as the next "
               f"version and a {retrain} model is trained on it in the background.")
    if kept:
        st.info(f"{kept} label(s) kept on {version.ref}, not saved as a version yet "
                f"({settings.retrain_every - kept} more until the next retrain).")
    return kept


def describe(version: DatasetVersion, guesser: Guesser) -> None:
    """A sentence per label saying what it covers, read with the names while zero-shot guesses (before any
    model is trained on this dataset)."""
    if guesser.run_id is not None:
        return
    written = descriptions(studio, caller, version.ref)
    with st.expander("Describe the labels (better first guesses)", expanded=False):
        st.caption("Until a model is trained, the guesses come from the label names alone. A sentence per label "
                   "saying what it covers ('parcels that came late or not at all') makes them better.")
        with st.form(f"describe:{version.ref}"):
            typed = {label: st.text_input(plain(label), value=written.get(label, ""), max_chars=MAX_DESCRIPTION,
                                          key=f"describe:{version.ref}:{label}")
                     for label in labels_offered(studio, caller, version.ref)}
            if st.form_submit_button("Save descriptions"):
                said_or_refused(lambda: describe_labels(studio, caller, version.ref, typed),
                                lambda kept: f"Saved descriptions of {len(kept)} label(s); the guesses read them.",
                                "Not saved", fresh_batch=version.ref)


def said_or_refused(act: Callable[[], Any], words: Callable[[Any], str], refused: str,
                    fresh_batch: str | None = None) -> None:
    """Do ``act`` and say what it did on the next run (the page runs again at once, with a new batch of
    ``fresh_batch`` when its guesses change), or say why it was refused."""
    try:
        done = act()
    except DatasetError as exc:
        st.error(f"{refused}: {exc}")
    else:
        st.session_state[NOTICE] = words(done)
        if fresh_batch is not None:
            st.session_state[SHOWN].pop(fresh_batch, None)
        st.rerun()


def add_a_label(version: DatasetVersion) -> None:
    """A label for texts that fit none of the version's: offered at once with the others."""
    with st.expander("A text fits none of the labels? Add one"):
        with st.form(f"new_label:{version.ref}", clear_on_submit=True, border=False):
            name = st.text_input("New label", max_chars=MAX_LABEL, key=f"new_label:{version.ref}")
            st.caption("It is offered for every text from now on, guessed by the label names until a model has "
                       "learnt it, and joins the label set of the next version saved once a text has it.")
            if st.form_submit_button("Add the label"):
                said_or_refused(lambda: new_label(studio, caller, version.ref, name),
                                lambda offered: f"Added the label '{plain(offered[-1])}': choose it for the texts it "
                                                "fits.", "Not added")


def label_batch(version: DatasetVersion, batch: list[Proposal]) -> None:
    """The batch as a form: each text with the guess chosen for it; one button keeps the lot."""
    if not batch:
        st.success("Every text of this version has been labelled or skipped.")
        return
    options = [*labels_offered(studio, caller, version.ref), SKIP]
    with st.form(f"label_batch:{version.ref}"):
        chosen = {}
        for n, proposal in enumerate(batch, 1):
            text, answer = st.columns([3, 2], vertical_alignment="center")
            now = f" · now '{plain(proposal.current)}' (from its topic)" if proposal.current else ""
            text.markdown(f"**{n}.** {plain(proposal.text)}")
            text.caption(f"Guess: {plain(proposal.guess)} ({proposal.score:.0%}){now}")
            chosen[proposal.line] = answer.selectbox(
                f"Label of text {n}", options, index=options.index(proposal.guess),
                key=f"label:{version.ref}:{proposal.line}", label_visibility="collapsed")
        submitted = st.form_submit_button(f"Save these {len(batch)} labels", type="primary")
    if submitted:
        keep({line: None if label == SKIP else label for line, label in chosen.items()}, version)


def keep(answers: dict[int, str | None], version: DatasetVersion) -> None:
    """Keep the answers; say what they did (and show the version a retrain saved)."""
    try:
        with st.spinner("Keeping the labels…"):
            kept = label_texts(studio, caller, version.ref, answers)
    except DatasetError as exc:
        st.error(f"Not kept: {exc}")
        return
    skipped = len(answers) - kept.given
    said = f"Kept {kept.given} label(s)" + (f", {skipped} skipped" if skipped else "") + "."
    if kept.saved is not None:
        said += (f" Saved {kept.saved.ref} with the labels people gave, and queued {kept.run.title} on it: its "
                 f"guesses take over when it has finished.")
        st.session_state[PICK] = kept.saved.ref
    st.session_state[SHOWN].pop(version.ref, None)
    st.session_state[NOTICE] = said
    st.rerun()


def save_now(version: DatasetVersion, kept: int) -> None:
    """Save the labels kept so far before the next retrain would."""
    if kept and st.button(f"Save the {kept} label(s) now and retrain", key="label_save_now"):
        try:
            saved, run = save_and_retrain(studio, caller, version.ref)
        except DatasetError as exc:
            st.error(f"Not saved: {exc}")
        else:
            st.session_state[NOTICE] = f"Saved {saved.ref} and queued {run.title} on it."
            st.session_state[PICK] = saved.ref
            st.session_state[SHOWN].pop(version.ref, None)
            st.rerun()


def training_now(version: DatasetVersion) -> None:
    """Runs on this dataset still training, said while they train (polled); the whole page again when they have
    finished, so their guesses and scores show."""
    training = retraining(studio, caller, version.ref)
    if not training and st.session_state.get(POLLING):
        st.session_state[POLLING] = False
        if version.ref in st.session_state.get(SHOWN, {}):  # the choices being made are not swapped from under them
            st.session_state[NOTICE] = ("The retrained model has finished: its guesses show from the next batch "
                                        "(the texts on screen stay as they are).")
        st.rerun()
    for record in training:
        st.caption(f"Training: {plain(record.name)} ({record.state.value}; progress on the Train page). When it "
                   f"has finished, its score shows here and its guesses from the next batch.")
    if training and not workers_online(studio, caller):
        st.warning("No worker is running, so the retrain waits. Start one with `python -m core worker` "
                   "(`make run` starts one beside the app).")


def curve(version: DatasetVersion) -> None:
    """Validation macro-F1 against the labels people gave, and whether more labels still help."""
    points = learning_curve(studio, caller, version.ref)
    if not points:
        st.caption("The learning curve appears once a model has been trained on a version of these texts.")
        return
    st.plotly_chart(charts.learning_curve([p.people_labels for p in points], [p.macro_f1 for p in points],
                                          [p.title for p in points]), width="stretch")
    verdict = more_labels_verdict(points, config.labelling.retrain_kind, config.labelling.stop_gain)
    if verdict:
        st.markdown(plain(verdict))


actor, config, studio, caller = start_page(
    "pages/views/label.py", Permission.MANAGE_DATA, "Label",
    "Label the texts that teach the model most, a batch at a time, starting from its guesses.")
if notice := st.session_state.pop(NOTICE, None):
    st.success(notice)
versions = labelling_versions(studio, caller)
if not versions:
    st.info("No version waits for labels. Start from texts without labels: discover their topics on the Topics "
            "page and save the topics as labels; the texts they leave out (and the topics' guesses) are labelled "
            "here.")
    st.page_link("pages/views/topics.py", label="Go to the Topics page", icon=":material/hub:")
else:
    chosen_version = choose_version(versions)
    current, proposals = batch_on_screen(chosen_version)
    kept_now = where_it_stands(chosen_version, current)
    describe(chosen_version, current)
    add_a_label(chosen_version)
    label_batch(chosen_version, proposals)
    save_now(chosen_version, kept_now)
    if retraining(studio, caller, chosen_version.ref):  # training_now says when it has finished, and stops polling
        st.session_state[POLLING] = True
    st.fragment(run_every=POLL_SECONDS if st.session_state.get(POLLING) else None)(training_now)(chosen_version)
    st.subheader("Learning curve")
    curve(chosen_version)
