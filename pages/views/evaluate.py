"""Evaluate page: compare runs on the same test split, inspect one, publish the best."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.presentation import charts
from core.presentation.display import when
from core.presentation.epoch_words import epochs_in_words
from core.presentation.highlight import highlighted_html
from core.presentation.metrics_words import METRIC_MEANINGS, evaluation_in_words, tags_in_words
from core.services.accounts import Permission
from core.services.classification import explain_with_run, review_threshold
from core.services.datasets import dataset_version, edited_test_split_note, guess_columns
from core.services.evaluation import (
    RANKING_METRICS, Compared, Evaluation, EvaluationError, PrecisionCheck, Recommendation, ReviewThreshold,
    bases_in_words,
    comparable_groups, compare_runs, evaluate_file, experiments_csv, experiments_json, filter_errors, markdown_report,
    TAG_RANKING_METRICS, TagEvaluation, co_occurrence, evaluate_tag_file, gives_tags,
    suggested_threshold, tag_evaluation, tag_markdown_report, tag_mistakes, compare_taggers, test_evaluation,
    VARIANT_TITLES, serving_variants,
)
from core.services.publishing import (
    PublishError, deletion_warning, publication, publish_check, publish_run, publishing_history, restore_run,
)
from core.services.runs import RunError, RunRecord, delete_run, name_of_run, run_namer, runs
from core.services.studio import AppConfig
from pages.common.widgets import duration, field_choice, model_card, plain, start_page, uploaded_table

ANY = "(any)"
EXPLAINED = "evaluate_explained"
CONFIRM_KEY = "confirm_publish"
PUBLISH_NOTICE = "publish_notice"
DELETE_NOTICE = "delete_run_notice"


def headline(evaluation: Evaluation) -> None:
    """The numbers a person looks at first, each with what it means, then what they mean for this model."""
    m = evaluation.metrics
    cards = st.columns(5)
    cards[0].metric("Accuracy", f"{m['accuracy']:.3f}", help=METRIC_MEANINGS["accuracy"])
    cards[1].metric("Macro-F1", f"{m['macro_f1']:.3f}", help=METRIC_MEANINGS["macro_f1"])
    cards[2].metric("Weighted F1", f"{m['weighted_f1']:.3f}", help=METRIC_MEANINGS["weighted_f1"])
    cards[3].metric("Calibration error", f"{evaluation.calibration_error:.3f}",
                    help=METRIC_MEANINGS["calibration_error"])
    speed = evaluation.texts_per_second
    cards[4].metric("Texts / second", f"{speed:,.0f}" if speed else "—", help=METRIC_MEANINGS["texts_per_second"])
    if words := evaluation_in_words(evaluation):
        st.markdown(plain(words))
    if evaluation.undefined_precision:
        st.warning("Never predicted, so their precision is undefined (shown as empty): "
                   + ", ".join(plain(label) for label in evaluation.undefined_precision) + ".")


def explain_mistake(shown, run_id: str, key: str) -> None:
    """One misclassified text, explained on request: the words that pushed it to the wrong label."""
    if shown.empty:
        return
    row = st.selectbox("Why was this one misclassified?", list(shown.index), key=f"why_pick:{key}", index=None,
                       placeholder="Choose a text", format_func=lambda i: f"{shown.loc[i, 'predicted']} instead of "
                                                                          f"{shown.loc[i, 'true label']} · "
                                                                          f"{str(shown.loc[i, 'text'])[:70]}")
    if row is None:
        return
    text = str(shown.loc[row, "text"])
    explained = st.session_state.setdefault(EXPLAINED, {})
    if (run_id, text) not in explained:  # the model is loaded and each word weighed once, not on every rerun
        with st.spinner("Weighing each word…"):
            explained[(run_id, text)] = explain_with_run(studio, caller, run_id, text)
    explanation = explained[(run_id, text)]
    st.html(highlighted_html(text, explanation))
    over = f" over “{plain(explanation.runner_up)}”" if explanation.runner_up else ""
    st.caption(f"Green words pushed towards “{plain(explanation.label)}”{over}, red ones the other way. "
               f"Method: {explanation.method}.")


#: Column widths (pixels) of the misclassified texts and of the comparison, chosen so that every column fits the
#: page's width (a cell cut short shows whole on hover; the downloads carry every figure).
ERROR_WIDTHS = {"line": 50, "text": 330, "true label": 120, "predicted": 120, "confidence": 100,
                "score of true label": 120}
COMPARISON_WIDTHS = {"run": 240, "figure": 85, "validation": 135, "calibration error": 110, "texts/s": 70,
                     "train time (s)": 100}


def error_browser(evaluation: Evaluation, key: str, run_id: str) -> None:
    """Misclassified texts, most confident first, narrowed to one true/predicted pair if wanted."""
    errors = evaluation.errors
    st.markdown(f"**{len(errors):,} of {evaluation.examples:,} test texts are misclassified.** "
                "The most confident mistakes come first: they often reveal label noise or a missing class.")
    left, right = st.columns(2)
    true_label = left.selectbox("True label", [ANY, *evaluation.labels], key=f"true:{key}")
    predicted = right.selectbox("Predicted label", [ANY, *evaluation.labels], key=f"pred:{key}")
    shown = filter_errors(errors, None if true_label == ANY else true_label, None if predicted == ANY else predicted)
    st.dataframe(shown, hide_index=True, width="stretch", height=320,
                 column_config={column: st.column_config.Column(width=width) for column, width in ERROR_WIDTHS.items()}
                 | {"confidence": st.column_config.ProgressColumn(format="%.2f", min_value=0, max_value=1,
                                                                  width=ERROR_WIDTHS["confidence"]),
                    "score of true label": st.column_config.NumberColumn(format="%.2f",
                                                                         width=ERROR_WIDTHS["score of true label"])})
    explain_mistake(shown, run_id, key)


def threshold_section(evaluation: Evaluation, suggested: ReviewThreshold, key: str) -> None:
    st.plotly_chart(charts.confidence_histogram(evaluation.confidence), width="stretch", key=f"hist:{key}")
    threshold = st.slider("Review threshold", 0.0, 1.0, suggested.value, 0.01, key=f"threshold:{key}",
                          help="Predictions less confident than this would be sent to a person on the Classify page.")
    st.caption(f"The Classify page starts at {suggested.value:.2f}. {suggested.note}")
    point = min(evaluation.threshold_curve, key=lambda row: abs(row["threshold"] - threshold))
    accuracy = f"{point['accuracy_kept']:.1%}" if point["accuracy_kept"] is not None else "—"
    kept = round(100 * point["share_kept"])  # the two shares add up to 100 % as shown
    st.markdown(f"At **{threshold:.2f}**, the model decides alone on **{kept}%** of texts, "
                f"with accuracy **{accuracy}**; the other {100 - kept}% go to review.")
    st.plotly_chart(charts.threshold_chart(evaluation.threshold_curve, threshold), width="stretch", key=f"thr:{key}")


def precision_table(check: PrecisionCheck, served: str) -> None:
    """Each way of serving the model side by side: its validation quality, how often it labels as float32 does,
    its speed on this machine, and which one serves."""
    st.markdown("#### How the model runs when it classifies")
    st.dataframe([{"variant": VARIANT_TITLES.get(v, v), "validation macro-F1": check.macro_f1.get(v),
                   "same label as float32": check.agreement.get(v), "texts/s": check.texts_per_second[v],
                   "may serve": check.passed[v], "serves": v == served} for v in check.texts_per_second],
                 hide_index=True, width="stretch",
                 column_config={"validation macro-F1": st.column_config.NumberColumn(format="%.3f"),
                                "same label as float32": st.column_config.NumberColumn(format="percent"),
                                "texts/s": st.column_config.NumberColumn(format="%.0f")})
    st.caption(f"Timed on the validation split{' on ' + plain(check.cpu) if check.cpu else ''} "
               f"(when the run was saved, or again where it was published, if that CPU differs). A variant may serve "
               f"only if it loses at "
               f"most {100 * check.max_accuracy_loss:.1f} points of macro-F1 and gives the float32 label to at "
               f"least {100 * check.min_agreement:.1f} % of the texts; the fastest that may serve is "
               f"{VARIANT_TITLES.get(check.chosen, check.chosen)}."
               + ("" if served == check.chosen else
                  f" The configuration (`[inference] precision`) serves {VARIANT_TITLES.get(served, served)}."))


def evaluation_details(evaluation: Evaluation, suggested: ReviewThreshold, key: str, run_id: str) -> None:
    """Headline metrics, per-label chart, confusion matrix, confidence and errors of one evaluation."""
    headline(evaluation)
    per_class, confusion = st.columns([2, 3])
    per_class.plotly_chart(charts.per_class_f1(evaluation.per_class), width="stretch", key=f"f1:{key}")
    show_share = confusion.toggle("Show shares of each true label", value=True, key=f"share:{key}")
    confusion.plotly_chart(charts.confusion_heatmap(evaluation.labels, evaluation.confusion,
                                                    evaluation.confusion_normalised, show_share),
                           width="stretch", key=f"cm:{key}")
    with st.expander("Every label's figures as text (precision, recall, F1, number of texts)"):
        st.code(evaluation.report_text, language=None)
    st.markdown("#### Confidence and the review threshold")
    threshold_section(evaluation, suggested, key)
    st.markdown("#### Misclassified texts")
    error_browser(evaluation, key, run_id)


def training_details(record: RunRecord, config: AppConfig, key: str) -> None:
    """How the run was trained: precision check, recipe and its reasons, training curve."""
    if record.inference:
        precision_table(*serving_variants(studio, caller, record))
    if record.recipe:
        with st.expander(f"How it was trained: {record.recipe['summary']}"):
            st.markdown("\n".join(f"- {reason}" for reason in record.recipe["reasons"]))
            # a tagger's epochs are chosen by micro-F1, a classifier's by macro-F1
            if epochs := epochs_in_words(record.fit_info):
                st.caption(epochs)
            metric = "micro_f1" if "best_validation_micro_f1" in record.fit_info else "macro_f1"
            if f"starting_validation_{metric}" in record.fit_info:
                st.caption(f"The head started from a linear probe at validation {metric.replace('_f1', '-F1')} "
                           f"{record.fit_info[f'starting_validation_{metric}']:.3f}; the best epoch reached "
                           f"{record.fit_info.get(f'best_validation_{metric}') or 0:.3f}.")
    if record.history:
        st.markdown("#### Training curve")
        st.plotly_chart(charts.training_curve(record.history), width="stretch", key=f"curve:{key}")


def choice_words(record: RunRecord, recommended: Recommendation | None) -> str:
    """What the comparison said of this run, for the publish dialog ("" when it said nothing)."""
    if recommended is None:
        return ""
    if recommended.run_id != record.run_id:
        if record.run_id in recommended.tied:
            return ("On the validation texts it cannot be told apart from the recommended run "
                    f"({name_of_run(studio, caller, recommended.run_id)})"
                    + (", and it is cheaper to train and serve. " if record.run_id == recommended.cheaper else ". "))
        return f"It is not the recommended run ({name_of_run(studio, caller, recommended.run_id)}). "
    if recommended.clear is False:
        return "It is the recommended run, though the compared runs cannot be told apart on the validation texts. "
    return "It is the recommended run. "


def publish_section(record: RunRecord, recommended: Recommendation | None = None) -> None:
    """Publish with a confirmation step (saying what the comparison recommended); restore the previous model in
    one click."""
    st.subheader("4 · Publish")
    if notice := st.session_state.pop(PUBLISH_NOTICE, None):
        st.success(notice)
    current = publication(studio, caller)
    if current is None:
        st.caption("No model is published yet: the Classify page has nothing to use until you publish one.")
    else:
        st.caption(f"Published now: **{name_of_run(studio, caller, current.run_id)}**, by {current.published_by} at "
                   f"{when(current.published_at)} (run `{current.run_id}`).")
        model_card(studio, caller)
    is_current = current is not None and current.run_id == record.run_id
    publish_col, restore_col = st.columns(2)
    if publish_col.button("Publish this run…", disabled=is_current, key="publish", type="primary"):
        st.session_state[CONFIRM_KEY] = record.run_id
    if st.session_state.get(CONFIRM_KEY) == record.run_id:
        check = publish_check(studio, caller, record)
        afterwards = ("the current model can be restored in one click." if current is not None else
                      "nothing is published yet, so this becomes the first model in use.")
        (st.error if check.worse else st.warning)(
            f"Publish **{record.name}**? {check.message} {choice_words(record, recommended)}Everyone classifying "
            f"feedback will use it from their next prediction; {afterwards}")
        yes, no = st.columns(2)
        if yes.button("Yes, publish the lower-scoring model" if check.worse else "Yes, publish",
                      key="confirm_publish_yes", type="secondary" if check.worse else "primary"):
            st.session_state.pop(CONFIRM_KEY)
            try:
                publish_run(studio, caller, record.run_id)
                st.session_state[PUBLISH_NOTICE] = (f"Published {record.name}. It is now the model used for "
                                                    "classification.")
                st.rerun()
            except PublishError as exc:
                st.error(f"Not published: {exc}. Refresh the page and try again, or pick another run.")
        if no.button("Cancel", key="confirm_publish_no"):
            st.session_state.pop(CONFIRM_KEY)
            st.rerun()
    if current is not None and current.replaced and restore_col.button(
            f"Restore the previous model ({name_of_run(studio, caller, current.replaced)})", key="restore_previous"):
        try:
            restored = restore_run(studio, caller)
            st.session_state[PUBLISH_NOTICE] = f"Restored {name_of_run(studio, caller, restored.run_id)} as the published model."
            st.rerun()
        except PublishError as exc:
            st.error(f"Not restored: {exc}. Publish a run from the table above instead.")
    history = publishing_history(studio, caller)
    if history:
        with st.expander(f"Publishing history ({len(history)})"):
            named = run_namer(runs(studio, caller))
            st.dataframe([{"when": when(p.published_at), "action": p.action, "model": named(p.run_id),
                           "by": p.published_by, "replaced": named(p.replaced), "run id": p.run_id}
                          for p in reversed(history)], hide_index=True, width="stretch")


def delete_section(record: RunRecord) -> None:
    """Delete this run and its files (not the published model, nothing still training), with a confirmation."""
    with st.expander("Delete this run"):
        if warning := deletion_warning(studio, caller, record.run_id):
            st.warning(warning)
        sure = st.checkbox(f"Yes, delete {record.name} and its files for good", key=f"delete_run:{record.run_id}")
        if st.button("Delete run", disabled=not sure, key="delete_run"):
            try:
                delete_run(studio, caller, record.run_id)
            except RunError as exc:
                st.error(f"Not deleted: {exc}.")
                return
            st.session_state[DELETE_NOTICE] = f"Deleted {record.name}."
            st.rerun()


def other_file_section(record: RunRecord, config: AppConfig) -> None:
    """Evaluate the chosen run on a labelled file that is not part of its dataset."""
    with st.expander("Evaluate this run on another labelled file"):
        upload = uploaded_table("JSONL or CSV with a text and a label field",
                                "other_file", config)
        if upload is None:
            return
        table, _ = upload
        guess = guess_columns(table)
        left, right = st.columns(2)
        text_field = field_choice(left, "Text field", table, guess.text, "other_text")
        label_field = field_choice(right, "Label field", table, guess.label, "other_label")
        if st.button("Evaluate", key="evaluate_other"):
            try:
                with st.spinner(f"Scoring {table.source} with {record.title}…"):
                    if gives_tags(record):
                        tagged, _ = evaluate_tag_file(studio, caller, record.run_id, table, text_field, label_field)
                    else:
                        evaluation, _ = evaluate_file(studio, caller, record.run_id, table, text_field, label_field)
            except (EvaluationError, OSError) as exc:
                st.error(f"This file cannot be evaluated: {exc}. Check the chosen text and label fields; the "
                         f"{'tags' if gives_tags(record) else 'labels'} must be ones this run knows.")
                return
            if gives_tags(record):
                tag_figures(tagged.metrics, tagged.per_tag, tagged.examples,
                            f"{tagged.examples:,} tagged texts from {table.source}, each tag at the run's threshold.")
                tag_mistake_browser(tagged, f"other:{record.run_id}")
                return
            st.caption(f"{evaluation.examples:,} labelled texts from {evaluation.source}.")
            evaluation_details(evaluation, suggested_threshold(evaluation, config.classify), key="other",
                               run_id=record.run_id)


def choose_group(groups: dict) -> tuple[tuple[str, str], list[RunRecord]]:
    """Step 1: the dataset version (and test split) whose runs are compared."""
    st.subheader("1 · Dataset version")
    group_keys = sorted(groups, key=lambda k: max(r.created_at for r in groups[k]), reverse=True)
    chosen = st.selectbox("Runs trained on", group_keys, key="eval_group",
                          format_func=lambda k: f"{k[0]} · {len(groups[k])} run(s)")
    st.caption("Only runs tested on the same split are compared; a different split or dataset version is a "
               f"separate group (this split's fingerprint: {chosen[1][:12]}).")
    if edited := edited_test_split_note(studio, caller, chosen[0]):
        st.warning(edited)
    return chosen, sorted(groups[chosen], key=lambda r: r.created_at)


def with_interval(row: pd.Series, column: str) -> str:
    """A score with its interval, "0.812 (0.78–0.84)", or the score alone without one."""
    if pd.isna(row[column]):
        return "—"
    if pd.isna(row.get(f"{column} low")):
        return f"{row[column]:.3f}"
    return f"{row[column]:.3f} ({row[f'{column} low']:.2f}–{row[f'{column} high']:.2f})"


def recommended_and_bars(compared: Compared, metric: str, metric_name: str, key: str) -> None:
    """The recommendation (a warning when its lead is not clear), the transformer's verdict, and the test bars."""
    best = compared.best
    name = compared.table.set_index("run").loc[best.run_id, "name"]
    (st.warning if best.clear is False else st.success)(f"Recommended: **{plain(name)}** — {plain(best.reason)}")
    if compared.transformer:
        st.caption(plain(compared.transformer))
    if not compared.intervals:
        st.caption("No intervals: some of these runs were trained before their validation predictions were kept.")
    st.plotly_chart(charts.comparison_bars(compared.table, metric, metric_name), width="stretch", key=key)


def comparison(chosen: tuple[str, str], records: list[RunRecord]) -> tuple[list, Recommendation]:
    """Step 2: the runs side by side on the chosen metric, the recommended one, and the experiment record;
    returns each run with its evaluation and the recommendation."""
    st.subheader("2 · Comparison")
    with st.spinner("Evaluating runs…"):
        pairs = [(record, test_evaluation(studio, caller, record)) for record in records]
    metric = st.selectbox("Rank by", list(RANKING_METRICS), format_func=RANKING_METRICS.get, key="rank_metric")
    compared = compare_runs(studio, caller, records, metric)
    table, best = compared.table, compared.best
    recommended_and_bars(compared, metric, RANKING_METRICS[metric], "comparison")
    # The columns people compare, best first by the chosen metric; every other figure is in the downloads.
    # (weighted F1 only when it ranks: the columns must fit the page's width)
    shown = ["name", metric, f"validation {metric}", *[m for m in ("accuracy", "macro_f1") if m != metric],
             "calibration error", "texts/s", "train time (s)"]
    widths = COMPARISON_WIDTHS
    table = table.assign(**{f"validation {metric}": [with_interval(row, f"validation {metric}")
                                                     for _, row in table.iterrows()]})
    st.dataframe(table.sort_values([metric, "name"], ascending=[False, True])[shown], hide_index=True,
                 width="stretch",
                 column_config={"name": st.column_config.TextColumn("run", width=widths["run"])}
                 | {name: st.column_config.NumberColumn(RANKING_METRICS[name], format="%.3f", width=widths["figure"])
                    for name in RANKING_METRICS}
                 | {f"validation {metric}": st.column_config.TextColumn(
                     f"validation {RANKING_METRICS[metric]}", width=widths["validation"],
                     help="On the validation split (the kinds that train in seconds: cross-validated on the train "
                          "and validation splits), with its bootstrap interval: runs whose intervals overlap much "
                          "may not really differ (the recommendation compares them text by text)."),
                    "calibration error": st.column_config.NumberColumn(format="%.3f",
                                                                       width=widths["calibration error"]),
                    "texts/s": st.column_config.NumberColumn(format="%.0f", width=widths["texts/s"]),
                    "train time (s)": st.column_config.NumberColumn(format="%.1f", width=widths["train time (s)"])})
    if bases := bases_in_words(table):
        st.caption(plain(bases))
    experiment_downloads(chosen[0], pairs)
    return pairs, best


def experiment_downloads(version_ref: str, pairs: list) -> None:
    """The experiment record of the runs compared (a tagger's without a test evaluation: its record's figures)."""
    downloads = st.columns(2)
    downloads[0].download_button("Experiment record (CSV)", experiments_csv(pairs), f"experiments-{version_ref}.csv",
                                 "text/csv", key="download_csv")
    downloads[1].download_button("Experiment record (JSON)", experiments_json(pairs),
                                 f"experiments-{version_ref}.json", "application/json", key="download_json")


def one_run(pairs: list, best_run_id: str) -> RunRecord:
    """Step 3: one run in detail (the recommended one first): its figures, mistakes, training and report."""
    st.subheader("3 · One run in detail")
    by_id = {r.run_id: (r, e) for r, e in pairs}
    run_ids = list(by_id)
    run_id = st.selectbox("Run", run_ids, index=run_ids.index(best_run_id), key="eval_run",
                          format_func=lambda i: by_id[i][0].name)
    record, evaluation = by_id[run_id]
    train_time = duration(record.durations.get("train_s"))
    st.caption(f"{record.name} · trained on {record.train_examples:,} examples in {train_time} · tested on "
               f"{evaluation.examples:,} texts ({evaluation.source}) · run `{record.run_id}`.")
    evaluation_details(evaluation, review_threshold(studio, record), key=run_id, run_id=record.run_id)
    training_details(record, config, key=run_id)
    st.download_button("Download this run's report (Markdown)", markdown_report(record, evaluation),
                       f"report-{run_id}.md", "text/markdown", key="download_report")
    other_file_section(record, config)
    return record


#: The tag metrics a tagger's cards show, with the meanings' keys.
TAG_CARDS = {"micro_f1": ("Micro-F1", "micro_f1"), "macro_f1": ("Macro-F1", "tag_macro_f1"),
             "samples_f1": ("Samples F1", "samples_f1"), "subset_accuracy": ("Exact tag sets", "subset_accuracy"),
             "hamming_loss": ("Hamming loss", "hamming_loss")}


def tag_comparison(records: list[RunRecord]) -> RunRecord:
    """Steps 2 and 3 for runs that give tags: side by side by micro-F1, the recommended one, one run's tags."""
    st.subheader("2 · Comparison")
    st.caption("These runs give tags, none, one or several per text. They are ranked by micro-F1 on the "
               "validation split (every text × tag decision counts alike, so a rare tag does not swing the "
               "choice on a handful of texts).")
    compared = compare_taggers(studio, caller, records)
    table, best = compared.table, compared.best
    recommended_and_bars(compared, "micro_f1", TAG_RANKING_METRICS["micro_f1"], "tag_comparison")
    # the test figures, and the validation one that ranks with its interval (the columns must fit the page's width)
    shown = ["name", *TAG_RANKING_METRICS, "validation micro_f1", "texts/s"]
    table = table.assign(**{"validation micro_f1": [with_interval(row, "validation micro_f1")
                                                    for _, row in table.iterrows()]})
    st.dataframe(table.sort_values(["micro_f1", "name"], ascending=[False, True])[shown], hide_index=True,
                 width="stretch",
                 column_config={"name": st.column_config.TextColumn("run", width=COMPARISON_WIDTHS["run"])}
                 | {m: st.column_config.NumberColumn(words, format="%.3f", width=COMPARISON_WIDTHS["figure"])
                    for m, words in TAG_RANKING_METRICS.items()}
                 | {"validation micro_f1": st.column_config.TextColumn(
                     "validation micro-F1", width=COMPARISON_WIDTHS["validation"],
                     help="On the validation split, with its bootstrap interval over the texts: runs whose "
                          "intervals overlap much may not really differ (the recommendation compares them text "
                          "by text).")}
                 | {"texts/s": st.column_config.NumberColumn(format="%.0f", width=COMPARISON_WIDTHS["texts/s"])})
    experiment_downloads(records[0].dataset_ref, [(record, None) for record in records])
    st.subheader("3 · One run in detail")
    by_id = {r.run_id: r for r in records}
    run_ids = list(by_id)
    record = by_id[st.selectbox("Run", run_ids, index=run_ids.index(best.run_id), key="eval_run",
                                format_func=lambda i: by_id[i].name)]
    metrics = record.test_metrics or {}
    tested = dataset_version(studio, caller, record.dataset_ref).meta.get("split_sizes", {}).get("test", 0)
    decisions = (record.model or {}).get("decisions", {})
    tag_figures(metrics, record.test_per_class or [], tested,
                "A tag is given when its score reaches its threshold: "
                + ("chosen per tag on the validation split." if decisions.get("tuned") else "0.5 for every tag.")
                + f" Trained on {record.train_examples:,} texts, tested on {tested:,} · run `{record.run_id}`.")
    evaluation = tag_evaluation(studio, caller, record)
    if evaluation is not None:
        tag_mistake_browser(evaluation, record.run_id)
        st.plotly_chart(charts.tag_pairs(co_occurrence(evaluation)), width="stretch", key=f"pairs:{record.run_id}")
    training_details(record, config, key=record.run_id)
    st.download_button("Download this run's report (Markdown)", tag_markdown_report(record, evaluation),
                       f"report-{record.run_id}.md", "text/markdown", key="download_report")
    other_file_section(record, config)
    return record


def tag_figures(metrics: dict, per_tag: list[dict], examples: int, caption: str) -> None:
    """A tagger's cards (each with its meaning), a sentence on them, and each tag's figures with its threshold."""
    for card, (metric, (words, meaning)) in zip(st.columns(len(TAG_CARDS)), TAG_CARDS.items()):
        card.metric(words, f"{metrics[metric]:.3f}" if metric in metrics else "—", help=METRIC_MEANINGS[meaning])
    if words := tags_in_words(metrics, per_tag, examples):
        st.markdown(plain(words))
    st.caption(caption)
    st.dataframe(per_tag, hide_index=True, width="stretch",
                 column_config={"label": st.column_config.TextColumn("tag")}
                 | {name: st.column_config.NumberColumn(format="%.3f")
                    for name in ("precision", "recall", "f1", "threshold")})


#: Column widths (pixels) of the texts a tagger got wrong, so that they fit the page's width.
TAG_MISTAKE_WIDTHS = {"text": 330, "right tags": 140, "tags given": 140, "missing": 110, "extra": 110, "wrong": 60}


def tag_mistake_browser(evaluation: TagEvaluation, run_id: str) -> None:
    """The test texts whose tag set was wrong, most wrong decisions first, narrowed to one tag if wanted."""
    mistakes = tag_mistakes(evaluation)
    st.markdown(f"**{len(mistakes):,} of {evaluation.examples:,} test texts got a tag set that is not quite "
                "right.** The most wrong decisions come first: a tag it missed, or one it added.")
    tag = st.selectbox("Only texts where this tag was missed or added", [ANY, *evaluation.names],
                       key=f"mistake_tag:{run_id}")
    if tag != ANY:
        involved = [tag in (row.missing.split("; ") + row.extra.split("; ")) for row in mistakes.itertuples()]
        mistakes = mistakes[involved]
    st.dataframe(mistakes, hide_index=True, width="stretch", height=300,
                 column_config={column: st.column_config.Column(width=width)
                                for column, width in TAG_MISTAKE_WIDTHS.items()})


actor, config, studio, caller = start_page(
    "pages/views/evaluate.py", Permission.EVALUATE, "Evaluate",
    "Compare the runs trained on one dataset version on the same test split, see where each "
    "one fails, and publish the best for classification.")
if notice := st.session_state.pop(DELETE_NOTICE, None):
    st.success(notice)
groups = comparable_groups(runs(studio, caller))
if not groups:
    st.info("No finished runs yet — train some models on the Train page first.")
    st.page_link("pages/views/train.py", label="Go to the Train page", icon=":material/model_training:")
    st.stop()
chosen, records = choose_group(groups)
if all(gives_tags(r) for r in records):
    record, recommended = tag_comparison(records), None
else:
    pairs, recommended = comparison(chosen, records)
    record = one_run(pairs, recommended.run_id)
publish_section(record, recommended)
delete_section(record)
