"""Runs side by side: only runs scored on the same test split are ever ranked together."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from core.evaluation.scoring import Evaluation
from core.training.runs import RunRecord

#: Metrics a user may rank by; higher is better for all of them.
RANKING_METRICS = {
    "macro_f1": "macro-F1",
    "accuracy": "accuracy",
    "weighted_f1": "weighted F1",
    "macro_precision": "macro precision",
    "macro_recall": "macro recall",
}
#: Metrics multi-label runs are ranked by; micro-F1 first (every text × tag decision counts alike, so a rare tag
#: does not swing the choice on a handful of texts).
TAG_RANKING_METRICS = {"micro_f1": "micro-F1", "macro_f1": "macro-F1", "samples_f1": "samples-F1"}
METRIC_COLUMNS = ["accuracy", "macro_precision", "macro_recall", "macro_f1", "weighted_precision",
                  "weighted_recall", "weighted_f1"]


class ComparisonError(ValueError):
    """Runs that cannot be compared, with why."""


def check_same_split(records: list[RunRecord]) -> None:
    """Refuse runs whose test splits differ: their scores are not comparable."""
    splits = {(r.dataset_ref, r.split_fingerprint) for r in records}
    if len(splits) > 1:
        listed = ", ".join(sorted(f"{r.run_id} ({r.dataset_ref})" for r in records))
        raise ComparisonError(f"these runs were tested on different splits and cannot be ranked together: {listed}")


def is_tuned(record: RunRecord) -> bool:
    """Whether the run's preset shaped it: the fine-tuned transformer's recipe is planned from it, the
    baselines have no recipe."""
    from core.models.model_kinds import model_kinds

    kind = model_kinds().get(record.kind)
    return kind is not None and kind.family == "transformer"


def own_hyperparameters(record: RunRecord) -> dict[str, Any]:
    """The hyper-parameters the run trained with; empty for a run recorded before its kind had its own (its
    record holds the transformer's, which it ignored)."""
    from core.models.model_kinds import model_kinds

    kind = model_kinds().get(record.kind)
    return record.hyperparameters if kind is not None and kind.records_own_settings(record.hyperparameters) else {}


def comparison_table(pairs: list[tuple[RunRecord, Evaluation]]) -> pd.DataFrame:
    """One row per run: model, preset, hyper-parameters, timings and test metrics."""
    check_same_split([record for record, _ in pairs])
    rows = []
    for record, evaluation in pairs:
        hyper = own_hyperparameters(record)
        rows.append({
            "run": record.run_id, "model": record.title, "name": record.name, "kind": record.kind,
            "family": "transformer" if is_tuned(record) else "baseline",
            "preset": record.preset if is_tuned(record) else "—",
            "hyper-parameters": ", ".join(f"{k}={v}" for k, v in hyper.items()) or "—",
            "train examples": record.train_examples,
            "train time (s)": record.durations.get("train_s"),
            "texts/s": evaluation.texts_per_second,
            **{name: evaluation.metrics[name] for name in METRIC_COLUMNS},
            **{f"validation {name}": (record.validation_metrics or {}).get(name) for name in RANKING_METRICS},
            "calibration error": evaluation.calibration_error,
            "test examples": evaluation.examples,
        })
    return pd.DataFrame(rows)


@dataclass
class Recommendation:
    run_id: str
    metric: str
    value: float
    reason: str


def _ranking_column(table: pd.DataFrame, metric: str) -> tuple[str, str]:
    """Validation scores choose (test scores are for reporting); test only when a run has no validation score."""
    column = f"validation {metric}"
    if column in table and table[column].notna().all():
        return column, "validation"
    return metric, "test"


def tag_comparison_table(records: list[RunRecord]) -> pd.DataFrame:
    """Multi-label runs side by side from their records: names, timings, validation and test tag metrics."""
    check_same_split(records)
    return pd.DataFrame([{
        "run": record.run_id, "model": record.title, "name": record.name, "kind": record.kind,
        "family": "transformer" if is_tuned(record) else "baseline",
        "train time (s)": record.durations.get("train_s"), "texts/s": record.durations.get("test_texts_per_s"),
        **{name: (record.test_metrics or {}).get(name) for name in TAG_RANKING_METRICS},
        **{f"validation {name}": (record.validation_metrics or {}).get(name) for name in TAG_RANKING_METRICS},
    } for record in records])


def _metric_name(metric: str) -> str:
    names = {**RANKING_METRICS, **TAG_RANKING_METRICS}
    if metric not in names:
        raise ComparisonError(f"cannot rank by {metric!r}; choose one of {', '.join(names)}")
    return names[metric]


def recommend(table: pd.DataFrame, metric: str = "macro_f1") -> Recommendation | None:
    """The best run by ``metric`` on the validation split; a tie goes to the faster model; ``reason`` in words."""
    _metric_name(metric)
    if table.empty:
        return None
    column, split = _ranking_column(table, metric)
    ranked = table.assign(_speed=table["texts/s"].fillna(0.0)).sort_values(
        [column, "_speed"], ascending=[False, False], kind="stable")
    best, name = ranked.iloc[0], _metric_name(metric)
    reason = f"highest {split} {name} ({best[column]:.3f})"
    if len(ranked) > 1:
        runner_up = ranked.iloc[1]
        gap = best[column] - runner_up[column]
        reason += (f", {gap:.3f} above {runner_up['model']} ({runner_up[column]:.3f})" if gap > 0
                   else f", tied with {runner_up['model']} and faster")
    if split == "validation" and metric in best and pd.notna(best[metric]):
        reason += f"; on the test split it scores {best[metric]:.3f}"
    elif split == "test":
        reason += " (some runs have no validation score, so the test split decided)"
    if pd.notna(best["texts/s"]):
        reason += f"; classifies about {best['texts/s']:,.0f} texts/s here"
    return Recommendation(str(best["run"]), metric, float(best[column]), reason + ".")


def transformer_verdict(table: pd.DataFrame, metric: str = "macro_f1") -> str | None:
    """Whether fine-tuning paid off here, said plainly: the best transformer against the best baseline."""
    if table.empty or not {"transformer", "baseline"} <= set(table["family"]):
        return None
    column, split = _ranking_column(table, metric)
    name = _metric_name(metric)
    best = {family: rows.sort_values(column, ascending=False, kind="stable").iloc[0]
            for family, rows in table.groupby("family")}
    transformer, baseline = best["transformer"], best["baseline"]
    gap = transformer[column] - baseline[column]
    if gap > 0:
        return (f"The fine-tuned transformer beats the best baseline, {baseline['model']}, by {gap:.3f} {split} "
                f"{name} ({transformer[column]:.3f} vs {baseline[column]:.3f}).")
    return (f"{baseline['model']} does as well as or better than the fine-tuned transformer on the {split} split "
            f"({name} {baseline[column]:.3f} vs {transformer[column]:.3f}): use the baseline — it is also faster "
            "and cheaper to serve. A longer preset or more data may change this.")


def comparable_groups(records: list[RunRecord]) -> dict[tuple[str, str], list[RunRecord]]:
    """Finished runs grouped by (dataset version, split fingerprint), each group rankable on its own."""
    groups: dict[tuple[str, str], list[RunRecord]] = {}
    for record in records:
        if record.state.value == "succeeded" and record.model:
            groups.setdefault((record.dataset_ref, record.split_fingerprint), []).append(record)
    return groups


def experiment_rows(pairs: list[tuple[RunRecord, Evaluation | None]]) -> list[dict[str, Any]]:
    """The experiment record: every run's settings, data fingerprints, metrics and durations (flat, for CSV)."""
    rows = []
    for record, evaluation in pairs:
        row: dict[str, Any] = {
            "run_id": record.run_id, "kind": record.kind, "model": record.title, "state": record.state.value,
            "dataset": record.dataset_ref, "dataset_fingerprint": record.dataset_fingerprint,
            "split_fingerprint": record.split_fingerprint, "preset": record.preset if is_tuned(record) else "",
            "created_at": record.created_at, "created_by": record.created_by or "",
            "train_examples": record.train_examples,
            **{f"hp_{k}": v for k, v in own_hyperparameters(record).items()},
            **{f"{k}": v for k, v in record.durations.items()},
        }
        if evaluation is not None:
            row.update({f"test_{k}": v for k, v in evaluation.metrics.items()})
            row["test_calibration_error"] = evaluation.calibration_error
        else:  # a tagger's figures (or a run without stored scores): as its record holds them
            row.update({f"test_{k}": v for k, v in (record.test_metrics or {}).items()})
        rows.append(row)
    return rows
