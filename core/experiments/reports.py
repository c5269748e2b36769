"""Evaluations of saved runs and the reports made from them.

A run's test split is evaluated from the scores stored when it finished (no
model is loaded); another labelled file is scored with the run's model.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pandas as pd

from core.experiments.comparison import experiment_rows, is_tuned, own_hyperparameters
from core.presentation.display import when
from core.presentation.exports import to_safe_csv
from core.platform.config import AppConfig
from core.data.dataset_versions import load_dataset_version
from core.evaluation.scoring import Evaluation, EvaluationError, evaluate, labelled_rows, load_scores, save_scores, score_split, score_texts
from core.data.ingest import RawTable
from core.data.tag_preparation import prepare_tags
from core.data.tags import TagFormat, TagShape, detect_task
from core.evaluation.tag_scoring import TagEvaluation, scored, tag_mistakes
from core.models.multilabel import indicator
from core.training.runs import RunRecord, RunState, run_folder
from core.training.finished import load_run_model
from core.platform.workspace import Workspace


def run_evaluation(workspace: Workspace, record: RunRecord, config: AppConfig) -> Evaluation:
    """The run's evaluation on its dataset's test split (scored once, then read from the run folder)."""
    if record.state is not RunState.SUCCEEDED:
        raise EvaluationError(f"run {record.run_id} is {record.state.value}; only finished runs can be evaluated")
    if (record.model or {}).get("task") == "multi-label":
        raise EvaluationError(f"{record.name} gives tags: its test figures are the tag metrics in its record (the "
                              "label-by-label evaluation does not apply)")
    folder = run_folder(workspace, record.run_id)
    scored = load_scores(folder)
    if scored is None:  # a run saved before scores were stored: score it now, once
        model, _ = load_run_model(workspace, record.run_id, config)
        scored = score_split(model, load_dataset_version(workspace, record.dataset_ref), "test")
        save_scores(folder, scored)
    return evaluate(scored)


def file_tag_evaluation(workspace: Workspace, run: str | Path, table: RawTable, text_field: str, label_field: str,
                        config: AppConfig) -> tuple[TagEvaluation, RunRecord]:
    """A tagger's evaluation on another tagged file: its tags read as the training file's were (lists, or split
    by the separator the run recorded), texts without a tag kept (none may be the right answer), every tag one
    the run knows."""
    model, record = load_run_model(workspace, run, config)
    if model.decisions is None:
        raise EvaluationError(f"{record.name} gives one label per text, not tags")
    guess = detect_task(table, label_field)
    tag_format = guess.format or TagFormat(TagShape.DELIMITED, label_field, record.fit_info.get("tag_separator", ";"))
    prepared = prepare_tags(table, text_field, tag_format, config, keep_untagged=True)
    if not prepared.ready:
        raise EvaluationError(f"{table.source}: " + "; ".join(f.message for f in prepared.report.errors))
    unknown = sorted({tag for row in prepared.rows["tags"] for tag in row} - set(record.labels))
    if unknown:
        raise EvaluationError(f"{table.source} has tags {record.name} does not know: {', '.join(unknown)} (its tags: "
                              f"{', '.join(record.labels)})")
    texts = prepared.rows["text"].tolist()
    ids = {tag: i for i, tag in enumerate(record.labels)}
    truth = indicator([[ids[t] for t in row] for row in prepared.rows["tags"]], len(record.labels))
    started = time.perf_counter()
    scores = model.predict_proba(texts)
    speed = len(texts) / max(time.perf_counter() - started, 1e-9)
    return scored(list(record.labels), texts, truth, scores, model.decisions.thresholds,
                  model.decisions.at_least_one, speed), record


def file_evaluation(workspace: Workspace, run: str | Path, table: RawTable, text_field: str, label_field: str,
                    config: AppConfig) -> tuple[Evaluation, RunRecord]:
    """The run's evaluation on another labelled file (labels matched to the run's, ignoring case)."""
    model, record = load_run_model(workspace, run, config)
    texts, label_ids, lines = labelled_rows(table, text_field, label_field, record.labels)
    return evaluate(score_texts(model, texts, label_ids, table.source, lines)), record


def _markdown_table(frame: pd.DataFrame) -> str:
    """A plain GitHub-style table (no extra dependency)."""
    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:.3f}"
        return "—" if value is None else str(value).replace("|", "\\|")

    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def _run_lines(record: RunRecord, texts_per_second: float | None) -> list[str]:
    """What a run's report opens with: its name, data, training and speed."""
    metric = "micro_f1" if "starting_validation_micro_f1" in record.fit_info else "macro_f1"
    return [
        f"# {record.name}",
        "",
        f"- Run `{record.run_id}`",
        "",
        f"- Dataset: `{record.dataset_ref}` (fingerprint `{record.dataset_fingerprint[:12]}`, "
        f"split `{record.split_fingerprint[:12]}`)",
        f"- Trained on {record.train_examples:,} examples"
        + (f"; preset {record.preset}" if is_tuned(record) else "")
        + f"; started {when(record.started_at)} UTC, by {record.created_by or 'unknown'}",
        *(["- Hyper-parameters: " + ", ".join(f"{k}={v}" for k, v in own_hyperparameters(record).items())]
          if own_hyperparameters(record) else []),
        *([f"- Recipe: {record.recipe['summary']}"] + [f"  - {reason}" for reason in record.recipe["reasons"]]
          if record.recipe else []),
        *([f"- Fine-tuning started from a linear probe at validation {metric.replace('_f1', '-F1')} "
           f"{record.fit_info[f'starting_validation_{metric}']:.3f}"]
          if f"starting_validation_{metric}" in record.fit_info else []),
        f"- Training time: {record.durations.get('train_s', 0):.1f} s; "
        + (f"classifies about {texts_per_second:,.0f} texts/s" if texts_per_second else
           "inference speed not measured"),
        "",
    ]


def tag_markdown_report(record: RunRecord, evaluation: TagEvaluation | None) -> str:
    """The same report for a tagger: its tag metrics, each tag's figures and threshold, the tags it most often
    missed and added on the test split."""
    m = record.test_metrics or {}
    lines = _run_lines(record, record.durations.get("test_texts_per_s"))
    lines += [f"## Test results ({evaluation.examples:,} texts)" if evaluation else "## Test results", "",
              " · ".join(f"{words} **{m[name]:.3f}**" for name, words in (
                  ("micro_f1", "micro-F1"), ("macro_f1", "macro-F1"), ("samples_f1", "samples-F1"),
                  ("subset_accuracy", "exact tag sets"), ("hamming_loss", "Hamming loss")) if name in m), "",
              _markdown_table(pd.DataFrame(record.test_per_class or [],
                                           columns=["label", "precision", "recall", "f1", "support", "threshold"])),
              ""]
    if evaluation is not None:
        mistakes = tag_mistakes(evaluation)
        for column, words in (("missing", "most often missed"), ("extra", "most often added")):
            counts = Counter(tag for cell in mistakes[column] for tag in cell.split("; ") if tag)
            if counts:
                lines += [f"Tags {words}: " + ", ".join(f"{tag} ({n})" for tag, n in counts.most_common(5)) + ".", ""]
    return "\n".join(lines)


def markdown_report(record: RunRecord, evaluation: Evaluation) -> str:
    """A short, shareable report of one run: what was trained on what, and how well it does."""
    m = evaluation.metrics
    per_class = pd.DataFrame(evaluation.per_class)[["label", "precision", "recall", "f1", "support"]]
    confusions = evaluation.errors.groupby(["true label", "predicted"]).size().sort_values(ascending=False).head(5)
    lines = [
        *_run_lines(record, evaluation.texts_per_second),
        f"## Test results ({evaluation.examples:,} texts: {evaluation.source})",
        "",
        f"Accuracy **{m['accuracy']:.3f}** · macro-F1 **{m['macro_f1']:.3f}** · weighted F1 "
        f"{m['weighted_f1']:.3f} · macro precision {m['macro_precision']:.3f} · macro recall "
        f"{m['macro_recall']:.3f} · expected calibration error {evaluation.calibration_error:.3f}",
        "",
        _markdown_table(per_class),
        "",
    ]
    if evaluation.undefined_precision:
        lines += [f"Never predicted (precision undefined): {', '.join(evaluation.undefined_precision)}.", ""]
    if len(confusions):
        lines += ["## Most frequent confusions", ""]
        lines += [f"- {true} → {pred}: {count}" for (true, pred), count in confusions.items()]
        lines.append("")
    return "\n".join(lines)


def experiments_csv(pairs: list[tuple[RunRecord, Evaluation | None]]) -> str:
    """The experiment record as CSV text (one row per run)."""
    return to_safe_csv(pd.DataFrame(experiment_rows(pairs)))  # labels and names are user text


def experiments_json(pairs: list[tuple[RunRecord, Evaluation | None]]) -> str:
    """The experiment record as JSON: each run's full record and its test summary."""
    return json.dumps([{"run": record.to_dict(), "test": evaluation.summary() if evaluation else None}
                       for record, evaluation in pairs], indent=2, default=str)
