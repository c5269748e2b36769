"""Classify page: score one text or a whole file with the published model, and correct it."""

from __future__ import annotations

import html
from datetime import datetime, timezone

import pandas as pd
import streamlit as st

from core.presentation.exports import (
    COLUMN_WORDS, LABEL, SCORE as CONFIDENCE, TAG_WORDS, on_page, results_frame, summarise_results, to_jsonl,
    to_safe_csv,
)
from core.presentation.highlight import highlighted_html
from core.services.accounts import Permission
from core.services.classification import (
    TAG_JOIN, FeedbackError, Prediction, classify, explain_text, give_feedback, my_feedback, review_threshold, serving_run,
)
from core.services.datasets import RawTable, guess_columns
from core.services.file_jobs import FileJobError, JobState, cancel_file_job, classify_file_later, file_job_result, file_jobs_of
from core.services.review import label_item, queue
from core.services.runs import RunRecord
from pages.common.widgets import badge, duration, field_choice, plain, start_page, uploaded_head

HISTORY = "classify_history"
LAST_TEXT = "classify_last"
FILE_RESULTS = "classify_file_results"
FEEDBACK_SENT = "classify_feedback_sent"
WHY = "classify_why"
SKIPPED, QUEUE_NOTICE = "queue_skipped", "queue_notice"
JOB_NOTICE = "classify_job_notice"
JOB_POLL_SECONDS = 2.0


def remember(text: str, prediction: Prediction, source: str, run_id: str) -> None:
    """Add a prediction to this session's history (with the run that made it, for corrections)."""
    st.session_state.setdefault(HISTORY, []).append({"run_id": run_id,
        "time": datetime.now(timezone.utc).strftime("%H:%M:%S"), "source": source, "text": text,
        "label": prediction.label, "score": prediction.score, "status": prediction.status,
        "prediction": prediction,
    })


def tag_thresholds(record: RunRecord) -> dict[str, float]:
    """A tagger's threshold per tag (empty for a model that gives one label)."""
    decisions = (record.model or {}).get("decisions") or {}
    return dict(zip(record.labels, decisions.get("thresholds", [])))


def show_prediction(prediction: Prediction, threshold: float, thresholds: dict[str, float] | None = None) -> None:
    """The label (a tagger's tags), a review badge, and a score bar per label (all text escaped, never HTML);
    a tag's bar says its threshold and whether it was given."""
    if prediction.status != "ok":
        st.warning(f"Not classified: {prediction.message}.")
        return
    judged = prediction.at_threshold(threshold)
    flag = badge("warning", "needs review") if judged.needs_review else badge("ok", "confident")
    headline = prediction.label if prediction.labels is None else (
        " · ".join(prediction.labels) if prediction.labels else "no tag")
    # HTML-escaped (quote=False: an apostrophe stays an apostrophe, not an entity Markdown would mangle)
    st.markdown(f"### {plain(html.escape(headline, quote=False))} {flag}", unsafe_allow_html=True)
    certainty = ("Certainty of the least certain tag" if prediction.labels is not None else "Confidence")
    st.caption(f"{certainty} {prediction.score:.0%}; the review threshold is {threshold:.2f}."
               + (" Each tag is given when its score reaches the tag's own threshold." if thresholds else "")
               + (" The text is longer than the model reads; only its beginning was used." if prediction.truncated
                  else ""))
    for label, score in sorted(prediction.scores.items(), key=lambda item: -item[1]):
        given = ""
        if thresholds and label in thresholds:
            given = f" · {'given' if label in (prediction.labels or []) else 'not given'} (threshold {thresholds[label]:.2f})"
        st.progress(min(max(score, 0.0), 1.0), text=f"{plain(label)} · {score:.1%}{given}")


def feedback_form(record: RunRecord, text: str, prediction: Prediction, key: str) -> None:
    """'Correct' or 'wrong, it should be …' (the label asked only then), stored with the text, the run, the user
    and the time; afterwards it says what was stored, in place of the question."""
    sent = st.session_state.setdefault(FEEDBACK_SENT, {})
    if sent.get(key, (None,))[0] == (record.run_id, text):
        st.success(sent[key][1])
        return
    with st.container(border=True):
        st.markdown("**Was this right?**")
        verdict = st.radio("Verdict", ["Yes, it is correct", "No, it should be…"], key=f"verdict:{key}",
                           label_visibility="collapsed", horizontal=True, index=None)
        wrong = verdict is not None and verdict.startswith("No")
        if prediction.labels is not None:  # a tagger's: the right tag set, starting from the tags given
            chosen = st.multiselect("The right tags", record.labels, default=prediction.labels, key=f"correct:{key}",
                                    placeholder="No tag fits") if wrong else []
            correct = TAG_JOIN.join(sorted(chosen)) if wrong and sorted(chosen) != sorted(prediction.labels) else None
        else:
            others = [label for label in record.labels if label != prediction.label]
            correct = st.selectbox("The right label", others, key=f"correct:{key}", index=None,
                                   placeholder="Choose the right label") if wrong else None
        if not st.button("Send feedback", key=f"send_feedback:{key}", disabled=verdict is None or (wrong and not correct)):
            return
    label = correct if wrong else prediction.label
    try:
        item = give_feedback(studio, caller, record, text, prediction.label, prediction.score, label)
    except FeedbackError as exc:
        st.error(f"Feedback not stored: {exc}")
        return
    said = (f"you said “{prediction.label}” is right" if item.is_correct
            else f"you said it should be “{item.correct_label}”, not “{prediction.label}”")
    sent[key] = ((record.run_id, text), f"Thank you — stored: {said}. It will be reviewed for the next training run.")
    st.rerun()


def why(text: str, tags: list[str] | None = None) -> None:
    """On request: the words that pushed the prediction towards its label (green) or the runner-up (red); for a
    tagger, the words that raised (green) or lowered (red) the score of the tag chosen."""
    with st.expander("Why these tags?" if tags is not None else "Why this label?"):
        tag = None
        if tags is not None:
            tag = st.selectbox("Tag", tags, key="explain_tag")
        if st.button("Show the words that decided it", key="explain_text"):
            with st.spinner("Weighing each word…"):
                st.session_state[WHY] = ((text, tag), explain_text(studio, caller, text, tag))
        shown = st.session_state.get(WHY)
        if not shown or shown[0] != (text, tag):
            return
        explanation = shown[1]
        st.html(highlighted_html(text, explanation))
        if tag is not None:
            st.caption(f"Green words raised the score of “{plain(tag)}”, red ones lowered it; the darker, the "
                       f"stronger. Method: {explanation.method}.")
            return
        over = f" over “{plain(explanation.runner_up)}”" if explanation.runner_up else ""
        st.caption(f"Green words pushed towards “{plain(explanation.label)}”{over}, red ones the other way; the "
                   f"darker, the stronger. Method: {explanation.method}.")


def single_text(record: RunRecord, threshold: float) -> None:
    text = st.text_area("Customer feedback", key="single_text", height=120,
                        placeholder="e.g. My parcel arrived two weeks late and the box was crushed.")
    if st.button("Classify", type="primary", key="classify_text"):
        classified = classify(studio, caller, [text], threshold)
        prediction = classified.predictions[0]
        st.session_state[LAST_TEXT] = {"text": text, "prediction": prediction, "run_id": classified.record.run_id}
        if prediction.status == "ok":
            remember(text, prediction, "text", classified.record.run_id)
    last = st.session_state.get(LAST_TEXT)
    if last and last["run_id"] == record.run_id:
        show_prediction(last["prediction"], threshold, tag_thresholds(record))
        if last["prediction"].status == "ok":
            prediction = last["prediction"]
            # a tagger: each tag it could give, the ones it gave first
            tags = None if prediction.labels is None else [
                *prediction.labels, *[t for t in record.labels if t not in prediction.labels]]
            why(last["text"], tags)
            feedback_form(record, last["text"], last["prediction"], "single")


def whole_file(record: RunRecord, threshold: float) -> None:
    """A small file classified here and now; a big one handed to the worker; the files being classified."""
    upload = uploaded_head("CSV, JSONL, Excel, or plain text with one feedback per line", "classify_file", config,
                           config.classify.instant_rows)
    if upload is not None:
        uploaded, table, whole = upload
        if whole:
            file_here(record, threshold, table, uploaded.file_id)
        else:
            file_later(uploaded, table, threshold)
    files_in_background()


def file_later(uploaded, head: RawTable, threshold: float) -> None:
    """A file too big to classify while the page waits: the worker does it a piece at a time."""
    st.info(f"{plain(uploaded.name)} has more than {config.classify.instant_rows:,} rows, so it is classified in "
            "the background, a piece at a time: you can leave this page and come back for the result.")
    text_field = field_choice(st, "Which field holds the text?", head, guess_columns(head).text,
                              f"job_field:{uploaded.file_id}")
    if st.button("Classify it in the background", type="primary", key="classify_file_job"):
        try:
            job = classify_file_later(studio, caller, uploaded.getvalue(), uploaded.name, text_field, threshold)
        except FileJobError as exc:
            st.error(f"Not queued: {exc}")
        else:
            st.session_state[JOB_NOTICE] = f"Queued: {job.name}. Its progress shows below."
            st.rerun()


def files_in_background() -> None:
    """The files being classified in the background, newest first, followed while any is in progress."""
    if notice := st.session_state.pop(JOB_NOTICE, None):
        st.success(notice)
    jobs = file_jobs_of(studio, caller)
    if jobs:
        st.markdown("#### Files classified in the background")
        moving = any(not p.job.state.finished for p in jobs)
        st.fragment(run_every=JOB_POLL_SECONDS if moving else None)(background_list)()


def background_list() -> None:
    """Each job: its progress and time left, a way to cancel it, and its result once done."""
    jobs = file_jobs_of(studio, caller)[:config.classify.jobs_shown]
    for progress in jobs:
        job = progress.job
        with st.container(border=True):
            st.markdown(f"**{plain(job.name)}**")
            st.caption(f"Classified by {plain(job.run_name)}, review threshold {job.threshold:.2f}.")
            if not job.state.finished:
                left = f" · about {duration(progress.eta_s)} left" if progress.eta_s is not None else ""
                st.progress(progress.fraction, text=(f"{job.stage}: {progress.rows_done:,} of {job.rows:,} rows{left}"
                                                     if job.rows else job.stage))
                if st.button("Cancel", key=f"cancel_job:{job.job_id}"):
                    cancel_file_job(studio, caller, job.job_id)
                    st.rerun()
            elif job.state is JobState.DONE:
                summary = job.summary
                st.caption(f"Done: {summary['scored']:,} rows classified, {summary['needs_review']:,} need review, "
                           f"{summary['not_scored']:,} not classified (empty or not text)"
                           + (f"; {job.skipped_lines:,} line(s) could not be read" if job.skipped_lines else "") + ".")
                path, name = file_job_result(studio, caller, job.job_id)
                st.download_button(f"Download {plain(name)}", lambda path=path: path.read_bytes(), name,
                                   key=f"download_job:{job.job_id}", on_click="ignore")
            else:
                st.caption(f"{job.state.value.capitalize()}" + (f": {plain(job.error)}" if job.error else "")
                           + (f" (by {plain(job.cancelled_by)})" if job.cancelled_by else "") + ".")


def file_here(record: RunRecord, threshold: float, table: RawTable, file_id: str) -> None:
    """A file small enough to classify while the page waits."""
    if table.skipped:
        st.warning(f"{table.skipped:,} line(s) of {table.source} could not be read and are left out "
                   f"(first: line {table.problems[0].line}).")
    text_field = field_choice(st, "Which field holds the text?", table, guess_columns(table).text,
                              f"file_field:{file_id}")
    if st.button(f"Classify {len(table.records):,} rows", type="primary", key="classify_file_run"):
        texts = [row.get(text_field) for row in table.records]
        bar = st.progress(0.0, text="Classifying…")
        classified = classify(studio, caller, texts, threshold, file_name=table.source,
                              progress=lambda done, total: bar.progress(done / max(total, 1),
                                                                        text=f"Classified {done:,} of {total:,}"))
        bar.empty()
        st.session_state[FILE_RESULTS] = {"file": file_id, "name": table.source, "rows": table.records,
                                          "lines": table.lines, "predictions": classified.predictions,
                                          "run_id": classified.record.run_id}
        for text, prediction in zip(texts, classified.predictions):
            if prediction.status == "ok":
                remember(text, prediction, table.source, classified.record.run_id)
    results = st.session_state.get(FILE_RESULTS)
    if not results or results["file"] != file_id or results["run_id"] != record.run_id:
        return
    judged = [p.at_threshold(threshold) for p in results["predictions"]]
    frame = results_frame(results["rows"], judged, record.labels, results["lines"],
                          tag_separator=(record.fit_info or {}).get("tag_separator"))
    summary = summarise_results(judged)
    cards = st.columns(3)
    cards[0].metric("Rows classified", f"{summary['scored']:,}")
    cards[1].metric("Need review", f"{summary['needs_review']:,}", help=f"Confidence below {threshold:.2f}")
    cards[2].metric("Not classified", f"{summary['not_scored']:,}", help="Empty or non-text rows")
    only_review = st.toggle("Show only rows that need review", key="only_review")
    page_frame = on_page(frame)  # the downloads below keep every column
    shown = page_frame[[p.needs_review for p in judged]] if only_review else page_frame
    st.dataframe(shown, hide_index=True, width="stretch", height=360, column_config=result_headers(page_frame))
    stem = results["name"].rsplit(".", 1)[0]
    left, right = st.columns(2)
    left.download_button("Download results (CSV)", to_safe_csv(frame), f"{stem}-classified.csv", "text/csv",
                         key="download_results_csv")
    right.download_button("Download results (JSONL)", to_jsonl(frame), f"{stem}-classified.jsonl",
                          "application/json", key="download_results_jsonl")
    correct_a_row(record, results, judged, file_id)


def correct_a_row(record: RunRecord, results: dict, judged: list[Prediction], file_id: str) -> None:
    """Say a prediction of the file was wrong without going through History: pick its row, then the right label."""
    text_field = st.session_state.get(f"file_field:{file_id}")
    rows = [i for i, p in enumerate(judged) if p.status == "ok"]
    if not rows or text_field is None:
        return
    with st.expander("A prediction is wrong? Correct it here"):
        row = st.selectbox("Row", rows, index=None, key=f"correct_row:{file_id}", placeholder="Choose a row",
                           format_func=lambda i: f"line {results['lines'][i]} · {judged[i].label} · "
                                                 f"{str(results['rows'][i].get(text_field, ''))[:70]}")
        if row is not None:
            feedback_form(record, str(results["rows"][row][text_field]), judged[row], f"file:{file_id}:{row}")


#: How wide the appended columns are drawn ("small" unless named), so the upload's columns and ours fit the
#: page's width; a cell cut short shows whole on hover.
RESULT_WIDTHS: dict[str, str | int] = {TAG_WORDS[LABEL]: 130}  # a text's tags are what a tagger's file is for


def result_headers(frame: pd.DataFrame) -> dict:
    """Words over the appended columns (the downloads keep the machine names), confidence as a bar; narrow,
    so the table fits the page."""
    config = {}
    for column, words in frame.attrs.get("words", {}).items():
        width = RESULT_WIDTHS.get(words, "small")
        as_bar = words in (COLUMN_WORDS[CONFIDENCE], TAG_WORDS[CONFIDENCE])
        config[column] = (st.column_config.ProgressColumn(words, format="%.2f", min_value=0, max_value=1, width=width)
                          if as_bar else st.column_config.Column(words, width=width))
    return config


REASONS = {"below_threshold": "below the review threshold", "confident_sample": "a confident one, sampled to catch "
                                                                               "confident mistakes"}


def review_queue_tab(record: RunRecord) -> None:
    """One queued text at a time, the most instructive first: its label, saved as a correction for review."""
    skipped = st.session_state.setdefault(SKIPPED, set())
    waiting = [item for item in queue(studio, caller) if item.id not in skipped]
    if notice := st.session_state.pop(QUEUE_NOTICE, None):
        st.success(notice)
    if not waiting:
        st.caption("Nothing to label: the queue is empty" + (" (apart from the texts you skipped)." if skipped else "."))
        return
    item = waiting[0]
    st.markdown(f"**{len(waiting):,} text(s) waiting.** This one was queued as {REASONS[item.reason]}; the model "
                f"said “{plain(item.predicted)}” with confidence {item.score:.0%}.")
    with st.container(border=True):
        st.markdown(plain(item.text))
    if tag_thresholds(record) and item.run_id == record.run_id:  # a tagger's text: its right tags
        given = [tag for tag in item.predicted.split(TAG_JOIN) if tag in record.labels]
        label = TAG_JOIN.join(sorted(st.multiselect("The right tags", record.labels, default=given,
                                                    key=f"queue_label:{item.id}", placeholder="No tag fits")))
    else:
        labels = record.labels if item.run_id == record.run_id else sorted({item.predicted, *record.labels})
        label = st.selectbox("The right label", labels, index=labels.index(item.predicted)
                             if item.predicted in labels else 0, key=f"queue_label:{item.id}")
    save, skip = st.columns(2)
    if save.button("Save label", type="primary", key="queue_save"):
        try:
            stored = label_item(studio, caller, item.id, label)
        except FeedbackError as exc:
            st.error(f"Not saved: {exc}")
            return
        st.session_state[QUEUE_NOTICE] = ("Saved: it goes to the feedback review for the next training run."
                                          if stored else "Someone labelled this text a moment ago; here is the next.")
        st.rerun()
    if skip.button("Skip", key="queue_skip"):
        skipped.add(item.id)
        st.rerun()


def history(record: RunRecord, threshold: float) -> None:
    entries = st.session_state.get(HISTORY, [])
    if not entries:
        st.caption("Nothing classified in this session yet.")
    else:
        frame = pd.DataFrame([{**{k: v for k, v in e.items() if k not in ("prediction", "run_id")},
                               "needs_review": e["prediction"].at_threshold(threshold).needs_review}
                              for e in entries])
        reviewed = int(frame["needs_review"].sum())
        st.markdown(f"**{len(frame):,} prediction(s) this session**, {reviewed:,} ({reviewed / len(frame):.0%}) "
                    "below the review threshold.")
        st.bar_chart(frame["label"].value_counts(), horizontal=True, height=200)
        st.dataframe(frame.iloc[::-1], hide_index=True, width="stretch", height=260,
                     column_config={"score": st.column_config.ProgressColumn(format="%.2f", min_value=0, max_value=1)})
        current = [i for i, e in enumerate(entries) if e["run_id"] == record.run_id]
        if current:  # corrections go to the model that made the prediction, i.e. the one published now
            with st.expander("Correct an earlier prediction"):
                index = st.selectbox("Prediction", current[::-1], key="history_pick",
                                     format_func=lambda i: f"{entries[i]['time']} · {entries[i]['label']} · "
                                                           f"{entries[i]['text'][:60]}")
                feedback_form(record, entries[index]["text"], entries[index]["prediction"], "history")
    mine = my_feedback(studio, caller)
    if mine:
        st.markdown(f"**Your feedback so far** ({len(mine)})")
        st.dataframe(pd.DataFrame([{"time": f.time.strftime("%Y-%m-%d %H:%M"), "text": f.text,
                                    "predicted": f.predicted, "your label": f.correct_label, "status": f.status}
                                   for f in mine]), hide_index=True, width="stretch", height=200)


actor, config, studio, caller = start_page(
    "pages/views/classify.py", Permission.CLASSIFY, "Classify",
    "Sort new customer feedback with the published model: one text or a whole file. "
    "Uncertain predictions are flagged for a person to check; tell us when one is wrong.")

with st.spinner("Loading the published model…"):
    record = serving_run(studio, caller)
if record is None:
    st.info("No model is published yet. An analyst publishes one on the Evaluate page.")
    if actor.can(Permission.PUBLISH):
        st.page_link("pages/views/evaluate.py", label="Go to the Evaluate page", icon=":material/analytics:")
    st.stop()
st.caption(f"Model: {plain(record.name)} · {'tags (none, one or several per text)' if tag_thresholds(record) else 'labels'}: "
           + ", ".join(plain(label) for label in record.labels))
suggested = review_threshold(studio, record)
threshold = st.slider("Review threshold", 0.0, 1.0, suggested.value, 0.01, key=f"threshold:{record.run_id}",
                      help="Predictions less confident than this are flagged 'needs review'. " + suggested.note)

labelling = actor.can(Permission.LABEL_QUEUE)
one, many, past, *queued = st.tabs(["One text", "A file", "History", *(["Review queue"] if labelling else [])])
with one:
    single_text(record, threshold)
with many:
    whole_file(record, threshold)
with past:
    history(record, threshold)
if queued:
    with queued[0]:
        review_queue_tab(record)
