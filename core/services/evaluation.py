"""Evaluating runs: a run on its test split, a run on another labelled file (logged), comparing runs.

Also names what callers need to read and present evaluations: the evaluation and its errors, the comparison
table and recommendation, the reports, the precision check and the suggested review threshold."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from core.accounts.audit import EventType
from core.accounts.auth import Permission
from core.data.ingest import RawTable
from core.evaluation.scoring import (
    SCORES_FILE, VALIDATION_SCORES_FILE, Evaluation, EvaluationError, filter_errors, load_scores,
)
from core.evaluation.cross_validation import load_out_of_fold
from core.evaluation.tag_scoring import (
    TAG_SCORES_FILE, VALIDATION_TAG_SCORES_FILE, TagEvaluation, co_occurrence, load_tag_scores, tag_mistakes,
)
from core.experiments.comparison import (
    RANKING_METRICS, TAG_RANKING_METRICS, Evidence, Recommendation, bases_in_words, comparable_groups,
    comparison_table, recommend,
    tag_comparison_table, transformer_verdict, with_intervals,
)
from core.experiments.reports import (
    experiments_csv, experiments_json, file_evaluation, file_tag_evaluation, markdown_report, run_evaluation,
    tag_markdown_report,
)
from core.models.precision import VARIANT_TITLES, PrecisionCheck
from core.serving.runtime import ReviewThreshold, serving_check, serving_precision, suggested_threshold
from core.services.studio import Caller, Studio
from core.training.finished import finished_run
from core.training.runs import RunError, RunRecord, load_record, resolve_run, run_folder


def test_evaluation(studio: Studio, caller: Caller, record: RunRecord) -> Evaluation:
    """A finished run's evaluation on its test split, worked out again only when its stored scores change;
    EvaluationError when it has none."""
    caller.require(Permission.EVALUATE)
    return _stored_evaluation(studio, record)


def _stored_evaluation(studio: Studio, record: RunRecord) -> Evaluation:
    """The test evaluation from the run's stored scores, remembered per scores file (a failure too: it is not
    retried on every page run)."""
    scores = run_folder(studio.workspace, record.run_id) / SCORES_FILE
    stamp = scores.stat().st_mtime if scores.exists() else 0.0

    def work_out() -> Evaluation | EvaluationError:
        try:
            return run_evaluation(studio.workspace, record, studio.config)
        except (EvaluationError, OSError) as error:
            return EvaluationError(str(error))

    found = studio.remembered(("test_evaluation", str(studio.workspace.root), record.run_id, stamp), work_out)
    if isinstance(found, EvaluationError):
        raise found
    return found


def evaluate_run(studio: Studio, caller: Caller, run: str | Path) -> tuple[Evaluation, RunRecord]:
    """A finished run's test evaluation, the run named by id or by its folder (the command line)."""
    caller.require(Permission.EVALUATE)
    workspace, run_id = resolve_run(studio.workspace, run)
    record = load_record(workspace, run_id)
    return run_evaluation(workspace, record, studio.config), record


@dataclass(frozen=True)
class Verdict:
    """Which of several runs on one split to use, why, whether fine-tuning paid off (None: no transformer), and
    whether the lead is clear (None: no per-text validation predictions to judge it on)."""

    run_id: str
    reason: str
    transformer: str | None
    clear: bool | None = None
    #: Per run, its validation metric and the interval of it (None where there are no validation predictions).
    candidates: tuple[dict, ...] = ()
    #: Without a clear winner: the runs that cannot be told apart, and one of them cheaper than the recommended.
    tied: tuple[str, ...] = ()
    cheaper: str | None = None


def stored_evidence(studio: Studio, records: list[RunRecord], scores_file: str = VALIDATION_SCORES_FILE
                    ) -> Evidence | None:
    """The runs' stored predictions on one split (validation by default; with the out-of-fold predictions of the
    runs scored by cross-validation), ready to be compared text by text; None when some run has none (trained
    before validation predictions were kept, or a tagger)."""
    scored, folds = {}, {}
    for record in records:
        folder = run_folder(studio.workspace, record.run_id)
        found = load_scores(folder, scores_file)
        if found is None:
            return None
        scored[record.run_id] = found
        if scores_file == VALIDATION_SCORES_FILE and record.cv_metrics \
                and (out_of_fold := load_out_of_fold(folder)) is not None:
            folds[record.run_id] = out_of_fold
    settings = studio.config.compare
    words = "{n:,} validation texts" if scores_file == VALIDATION_SCORES_FILE else "{n:,} test texts"
    return Evidence.of(scored, settings.bootstrap_samples, settings.confidence, studio.config.training.seed, folds,
                       words)


@dataclass(frozen=True)
class Compared:
    """Single-label runs on one split side by side: the table (test figures, validation and test intervals),
    the recommendation, the transformer's verdict, and whether intervals could be worked out."""

    table: pd.DataFrame
    best: Recommendation
    transformer: str | None
    intervals: bool


def compare_runs(studio: Studio, caller: Caller, records: list[RunRecord], metric: str = "macro_f1") -> Compared:
    """The runs compared on ``metric``: each run's intervals and the recommendation judged on the paired bootstrap
    of the validation texts (worked out once per set of runs and metric, not on every page run)."""
    pairs = [(record, test_evaluation(studio, caller, record)) for record in records]

    def work() -> Compared:
        evidence = stored_evidence(studio, records)
        table = with_intervals(comparison_table(pairs), metric, stored_evidence(studio, records, SCORES_FILE), "test")
        table = with_intervals(table, metric, evidence)
        return Compared(table, recommend(table, metric, evidence), transformer_verdict(table, metric, evidence),
                        evidence is not None)

    return studio.remembered(("compared", str(studio.workspace.root), tuple(sorted(r.run_id for r in records)),
                              metric), work)


def stored_tag_evidence(studio: Studio, records: list[RunRecord], scores_file: str = VALIDATION_TAG_SCORES_FILE
                        ) -> Evidence | None:
    """Taggers' stored tag sets on one split (validation by default), ready to be compared text by text; None
    when some run kept none (trained before they were kept)."""
    given = {}
    for record in records:
        found = load_tag_scores(run_folder(studio.workspace, record.run_id), scores_file)
        if found is None:
            return None
        given[record.run_id] = (found.texts, found.truth, found.given)
    settings = studio.config.compare
    words = "{n:,} validation texts" if scores_file == VALIDATION_TAG_SCORES_FILE else "{n:,} test texts"
    return Evidence.of_tags(given, settings.bootstrap_samples, settings.confidence, studio.config.training.seed,
                            words)


def compare_taggers(studio: Studio, caller: Caller, records: list[RunRecord], metric: str = "micro_f1") -> Compared:
    """Taggers compared on ``metric`` as :func:`compare_runs` compares labellers: intervals on validation and test,
    the recommendation judged on the paired bootstrap of the validation texts."""
    caller.require(Permission.EVALUATE)

    def work() -> Compared:
        evidence = stored_tag_evidence(studio, records)
        table = with_intervals(tag_comparison_table(records), metric, stored_tag_evidence(studio, records,
                                                                                          TAG_SCORES_FILE), "test")
        table = with_intervals(table, metric, evidence)
        return Compared(table, recommend(table, metric, evidence), transformer_verdict(table, metric, evidence),
                        evidence is not None)

    return studio.remembered(("compared tags", str(studio.workspace.root),
                              tuple(sorted(r.run_id for r in records)), metric), work)


def _candidates(table: pd.DataFrame, metric: str) -> tuple[dict, ...]:
    """Each compared run's validation figure, what it rests on, and its interval (the command line's last line)."""
    column = f"validation {metric}"
    return tuple({"run": row["run"], "name": row["name"], f"validation_{metric}": row[column],
                  "validated_on": row.get("validated on", "validation split"),
                  "validation_interval": (None if pd.isna(row[f"{column} low"])
                                          else [round(row[f"{column} low"], 4), round(row[f"{column} high"], 4)])}
                 for _, row in table.iterrows())


def recommendation(studio: Studio, caller: Caller, records: list[RunRecord]) -> Verdict:
    """After several runs on one split: the one to use, chosen on validation (micro-F1 for multi-label runs,
    macro-F1 otherwise) with the uncertainty of the lead, and the transformer's verdict."""
    taggers = bool(records) and all(gives_tags(record) for record in records)
    metric = "micro_f1" if taggers else "macro_f1"
    compared = (compare_taggers if taggers else compare_runs)(studio, caller, records, metric)
    candidates = _candidates(compared.table, metric)
    best = compared.best
    return Verdict(best.run_id, best.reason, compared.transformer, best.clear, candidates, best.tied, best.cheaper)




def evaluate_tag_file(studio: Studio, caller: Caller, run: str | Path, table: RawTable, text_field: str,
                      label_field: str) -> tuple[TagEvaluation, RunRecord]:
    """A tagger scored on another tagged file (core.experiments.reports.file_tag_evaluation); logged like a
    labelled file's evaluation, with its micro-F1."""
    caller.require(Permission.EVALUATE)
    evaluation, record = file_tag_evaluation(studio.workspace, run, table, text_field, label_field, studio.config)
    studio.audit(caller, EventType.FILE_EVALUATED, run=record.run_id, file=table.source, rows=evaluation.examples,
                 micro_f1=evaluation.metrics.get("micro_f1"))
    return evaluation, record


def run_gives_tags(studio: Studio, caller: Caller, run: str | Path) -> bool:
    """Whether a finished run (by id, or by folder from the command line) is a tagger; False when there is no
    such finished run (the caller's next step says what is wrong with it)."""
    caller.require(Permission.EVALUATE)
    try:
        record, _ = finished_run(studio.workspace, run)
    except (EvaluationError, RunError, OSError, ValueError):
        return False
    return gives_tags(record)


def tag_evaluation(studio: Studio, caller: Caller, record: RunRecord) -> TagEvaluation | None:
    """A tagger's test split as scored when it finished (texts, true tags, scores, thresholds); None for a run
    that kept none."""
    caller.require(Permission.EVALUATE)
    path = run_folder(studio.workspace, record.run_id) / TAG_SCORES_FILE
    stamp = path.stat().st_mtime if path.exists() else 0.0
    # read once per scores file, not on every page run (GoEmotions' test split: 1.5 MB of JSON)
    return studio.remembered(("tag_evaluation", str(studio.workspace.root), record.run_id, stamp),
                             lambda: load_tag_scores(path.parent))


def gives_tags(record: RunRecord) -> bool:
    """Whether a finished run's model gives tags (several per text) rather than one label."""
    return (record.model or {}).get("task") == "multi-label"


def evaluate_file(studio: Studio, caller: Caller, run: str | Path, table: RawTable, text_field: str,
                  label_field: str) -> tuple[Evaluation, RunRecord]:
    """A finished run (by id, or by folder from the command line) scored on another labelled file, labels
    matched to the run's ignoring case; logged with the file, how many rows were scored and the result."""
    caller.require(Permission.EVALUATE)
    evaluation, record = file_evaluation(studio.workspace, run, table, text_field, label_field, studio.config)
    studio.audit(caller, EventType.FILE_EVALUATED, run=record.run_id, file=table.source, rows=evaluation.examples,
                 macro_f1=evaluation.metrics.get("macro_f1"))
    return evaluation, record


def serving_variants(studio: Studio, caller: Caller, record: RunRecord) -> tuple[PrecisionCheck | None, str]:
    """How a run serves on this machine: the check that decides it (made here at publish when the run's own was
    timed on another CPU) and the variant that serves."""
    caller.require(Permission.EVALUATE)
    check = serving_check(studio.workspace, record)
    return check, serving_precision(record, studio.config, check)


__all__ = [
    "Evaluation", "EvaluationError", "Evidence", "PrecisionCheck", "RANKING_METRICS", "Recommendation", "ReviewThreshold", "Verdict",
    "Compared", "bases_in_words", "comparable_groups", "compare_runs", "comparison_table", "evaluate_file", "evaluate_run",
    "experiments_csv", "experiments_json",
    "filter_errors", "markdown_report", "recommend", "recommendation", "serving_precision", "suggested_threshold",
    "test_evaluation", "transformer_verdict", "VARIANT_TITLES", "serving_variants",
    # multi-label runs
    "TAG_RANKING_METRICS", "TagEvaluation", "co_occurrence", "evaluate_tag_file", "gives_tags", "run_gives_tags",
    "tag_evaluation", "tag_markdown_report", "tag_mistakes",
    "compare_taggers",
]
