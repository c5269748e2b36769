"""Runs side by side: only runs scored on the same test split are ever ranked together."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from core.evaluation.epoch_curve import epoch_peak
from core.evaluation.scoring import Evaluation, ScoredSet
from core.evaluation.tag_uncertainty import TAG_METRICS, paired_tag_difference, tag_interval
from core.evaluation.uncertainty import METRICS, Difference, Interval, interval, paired_difference
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


def validation_estimate(record: RunRecord) -> tuple[dict[str, float], str]:
    """The validation figures a run is compared by, and what they rest on in words: its cross-validation on the
    train and validation splits when it was scored by one (the kinds that train in seconds), else the
    validation split's."""
    if record.cv_metrics:
        return record.cv_metrics, (f"{int(record.cv_metrics['folds'])}-fold cross-validation, "
                                   f"{int(record.cv_metrics['texts']):,} texts")
    return record.validation_metrics or {}, "validation split"


def bases_in_words(table: pd.DataFrame) -> str | None:
    """What each run's validation score rests on, said once under the comparison when some were cross-validated
    (None when every score is the validation split's)."""
    if "validated on" not in table or (table["validated on"] == "validation split").all():
        return None
    groups = table.groupby("validated on", sort=False)["model"].agg(lambda models: ", ".join(dict.fromkeys(models)))
    return ("Validation scores: " + "; ".join(f"{models} — {basis}" for basis, models in groups.items()) +
            ". The kinds that train in seconds are cross-validated on the train and validation splits together "
            "(the test split never touched); a lead between two of them is judged on all those texts, a lead over "
            "another run on the validation split they share.")


def _epoch_excess(record: RunRecord, metric: str) -> float | None:
    """How far a fine-tuned run's kept epoch stands above the epochs beside it on ``metric`` (None: not a run
    that chose an epoch on validation)."""
    peak = epoch_peak(record.history, metric) if is_tuned(record) else None
    return None if peak is None else round(peak.excess, 4)


def comparison_table(pairs: list[tuple[RunRecord, Evaluation]]) -> pd.DataFrame:
    """One row per run: model, preset, hyper-parameters, timings and test metrics."""
    check_same_split([record for record, _ in pairs])
    rows = []
    for record, evaluation in pairs:
        hyper = own_hyperparameters(record)
        estimate, basis = validation_estimate(record)
        rows.append({
            "run": record.run_id, "model": record.title, "name": record.name, "kind": record.kind,
            "family": "transformer" if is_tuned(record) else "baseline",
            "preset": record.preset if is_tuned(record) else "—",
            "hyper-parameters": ", ".join(f"{k}={v}" for k, v in hyper.items()) or "—",
            "train examples": record.train_examples,
            "train time (s)": record.durations.get("train_s"),
            "texts/s": evaluation.texts_per_second,
            **{name: evaluation.metrics[name] for name in METRIC_COLUMNS},
            **{f"validation {name}": estimate.get(name) for name in RANKING_METRICS},
            "validated on": basis,
            **{f"epoch excess {name}": _epoch_excess(record, name) for name in RANKING_METRICS},
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
    #: Whether the lead is outside the paired interval of every other run (None: no per-text validation
    #: predictions to tell, e.g. runs trained before they were kept, or tag runs).
    clear: bool | None = None
    #: The runs that could not be told apart from the best (itself first).
    tied: tuple[str, ...] = ()
    #: Of those, one cheaper to train and serve than the recommended run (None: none is).
    cheaper: str | None = None


@dataclass(frozen=True)
class Sample:
    """Runs' predictions on the same texts, none of which the predicting model learned from; ``words`` says what
    the texts are ("300 validation texts"), ``key`` tells two samples' texts apart."""

    y_true: np.ndarray
    predictions: dict[str, np.ndarray]
    words: str
    key: int = 0

    @classmethod
    def of(cls, scored: dict[str, ScoredSet], words: str) -> "Sample | None":
        """From stored scores (``words`` with ``{n}`` for the number of texts); None unless every run has them
        for the same texts."""
        sets = list(scored.values())
        if not sets or any(not s.texts or s.texts != sets[0].texts for s in sets):
            return None
        return cls(sets[0].y_true, {run: s.y_pred for run, s in scored.items()}, words.format(n=len(sets[0].texts)),
                   hash(tuple(sets[0].texts)))


@dataclass(frozen=True)
class Evidence:
    """Each run's validation predictions on the same texts (and, for the runs scored by cross-validation, their
    out-of-fold predictions on the train and validation texts), and how to resample them."""

    validation: Sample
    labels: int
    samples: int = 1000
    confidence: float = 0.95
    seed: int = 0
    #: Per cross-validated run, its out-of-fold predictions (core.evaluation.cross_validation).
    cross_validated: dict[str, Sample] = field(default_factory=dict)

    @classmethod
    def of(cls, scored: dict[str, ScoredSet], samples: int, confidence: float, seed: int,
           cross_validated: dict[str, ScoredSet] | None = None, words: str = "{n:,} validation texts"
           ) -> "Evidence | None":
        """From the runs' stored validation scores (and out-of-fold scores where they have them); None unless
        every run has validation scores for the same texts."""
        validation = Sample.of(scored, words)
        if validation is None:
            return None
        labels = len(next(iter(scored.values())).labels)
        folds = {run: Sample.of({run: found}, "{n:,} texts scored by " + found.source) for run, found in
                 (cross_validated or {}).items()}
        return cls(validation, labels, samples, confidence, seed,
                   {run: sample for run, sample in folds.items() if sample is not None})

    def sample(self, *runs: str) -> Sample:
        """The most texts all of ``runs`` were scored on out of sample: their cross-validation when each of them
        was cross-validated on the same texts, the validation split otherwise."""
        found = [self.cross_validated.get(run) for run in runs]
        if any(sample is None for sample in found) or len({sample.key for sample in found}) > 1:
            return self.validation
        return Sample(found[0].y_true, {run: self.cross_validated[run].predictions[run] for run in runs},
                      found[0].words, found[0].key)

    @property
    def tags(self) -> bool:
        """Whether these are taggers' predictions (a 0/1 matrix of tags per text, not a label id)."""
        return self.validation.y_true.ndim == 2

    def judges(self, metric: str) -> bool:
        """Whether intervals of ``metric`` can be worked out from these predictions."""
        return metric in (TAG_METRICS if self.tags else METRICS)

    def interval(self, run: str, metric: str) -> Interval:
        sample = self.sample(run)
        if self.tags:
            return tag_interval(sample.y_true, sample.predictions[run], metric, self.samples, self.confidence,
                                self.seed)
        return interval(sample.y_true, sample.predictions[run], self.labels, metric, self.samples, self.confidence,
                        self.seed)

    def difference(self, run_a: str, run_b: str, metric: str) -> Difference:
        """Run A's score minus run B's on the texts both were scored on (:meth:`sample`), with its paired
        interval."""
        sample = self.sample(run_a, run_b)
        if self.tags:
            return paired_tag_difference(sample.y_true, sample.predictions[run_a], sample.predictions[run_b], metric,
                                         self.samples, self.confidence, self.seed)
        return paired_difference(sample.y_true, sample.predictions[run_a], sample.predictions[run_b], self.labels,
                                 metric, self.samples, self.confidence, self.seed)

    @classmethod
    def of_tags(cls, given: dict[str, tuple[list[str], np.ndarray, np.ndarray]], samples: int, confidence: float,
                seed: int, words: str = "{n:,} validation texts") -> "Evidence | None":
        """From taggers' tag sets on one split (per run: texts, true tags, given tags; ``words`` as in
        :meth:`of`); None unless every run has them for the same texts."""
        found = list(given.values())
        if not found or any(not texts or texts != found[0][0] for texts, _, _ in found):
            return None
        truth = found[0][1]
        validation = Sample(truth, {run: tags for run, (_, _, tags) in given.items()},
                            words.format(n=len(truth)), hash(tuple(found[0][0])))
        return cls(validation, truth.shape[1], samples, confidence, seed)

    def covers(self, runs: list[str]) -> bool:
        return all(run in self.validation.predictions for run in runs)


def with_intervals(table: pd.DataFrame, metric: str, evidence: Evidence | None, split: str = "validation"
                   ) -> pd.DataFrame:
    """The table with each run's interval for ``metric`` on ``split`` (columns ``validation macro_f1 low`` and
    ``high``; ``macro_f1 low`` and ``high`` for the test split), empty where there is no evidence."""
    column = f"validation {metric}" if split == "validation" else metric
    low, high = f"{column} low", f"{column} high"
    if evidence is None or not evidence.judges(metric) or not evidence.covers(table["run"].tolist()):
        return table.assign(**{low: None, high: None})
    found = {run: evidence.interval(run, metric) for run in table["run"]}
    return table.assign(**{low: [found[r].low for r in table["run"]], high: [found[r].high for r in table["run"]]})


def _cost(kind: str) -> int:
    """How costly a kind is to train and serve (core.models.classifiers.TextClassifier.cost_rank)."""
    from core.models.model_kinds import model_kinds

    found = model_kinds().get(kind)
    return found.cost_rank if found is not None else 99


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
        "preset": record.preset if is_tuned(record) else "—",
        "train time (s)": record.durations.get("train_s"), "texts/s": record.durations.get("test_texts_per_s"),
        **{name: (record.test_metrics or {}).get(name) for name in TAG_RANKING_METRICS},
        **{f"validation {name}": (record.validation_metrics or {}).get(name) for name in TAG_RANKING_METRICS},
    } for record in records])


def _metric_name(metric: str) -> str:
    names = {**RANKING_METRICS, **TAG_RANKING_METRICS}
    if metric not in names:
        raise ComparisonError(f"cannot rank by {metric!r}; choose one of {', '.join(names)}")
    return names[metric]


def recommend(table: pd.DataFrame, metric: str = "macro_f1", evidence: Evidence | None = None
              ) -> Recommendation | None:
    """The best run by ``metric`` on the validation split, said to be a clear choice only when its lead over every
    other run is clear on the paired bootstrap of the validation texts; otherwise said plainly that the runs
    cannot be told apart, naming a cheaper one among them. ``reason`` in words."""
    name = _metric_name(metric)
    if table.empty:
        return None
    column, split = _ranking_column(table, metric)
    ranked = table.assign(_speed=table["texts/s"].fillna(0.0)).sort_values(
        [column, "_speed"], ascending=[False, False], kind="stable")
    best = ranked.iloc[0]
    runs = ranked["run"].tolist()
    if split == "validation" and len(ranked) > 1 and evidence is not None and evidence.covers(runs) \
            and evidence.judges(metric):
        return _judged(ranked, metric, name, evidence)
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


def _judged(ranked: pd.DataFrame, metric: str, name: str, evidence: Evidence) -> Recommendation:
    """The recommendation when every run's validation predictions are at hand: clear lead, or no clear winner.
    Each lead is judged on the most texts both runs were scored on out of sample (Evidence.sample)."""
    best = ranked.iloc[0]
    rows = {row["run"]: row for _, row in ranked.iterrows()}
    differences = {run: evidence.difference(best["run"], run, metric) for run in rows if run != best["run"]}
    luck = _luck(best, metric)
    tied = [run for run, difference in differences.items() if not difference.clear or difference.value <= luck]
    share = f"{evidence.confidence:.0%}"
    if not tied:
        runner_up = ranked.iloc[1]
        lead = differences[runner_up["run"]]
        reason = (f"highest validation {name}, {evidence.interval(best['run'], metric).words()}, clearly above "
                  f"{runner_up['model']} (by {lead.value:+.3f}, paired {share} interval {lead.low:+.3f} to "
                  f"{lead.high:+.3f} on these {evidence.sample(best['run'], runner_up['run']).words})")
        return Recommendation(str(best["run"]), metric, float(best[f"validation {metric}"]),
                              _with_test_and_speed(reason, best, metric), clear=True)
    candidates = [best["run"], *tied]
    cheapest = rows[min(candidates, key=lambda run: (_cost(rows[run]["kind"]), -(rows[run]["texts/s"] or 0.0)))]
    cheaper = cheapest if _cost(cheapest["kind"]) < _cost(best["kind"]) else None
    closest = differences[tied[0]]
    scores = ", ".join(f"{rows[run]['model']} {evidence.interval(run, metric).words()}" for run in candidates)
    reason = (f"no clear winner: the validation {name} of {scores} cannot be told apart ({best['model']} − "
              f"{rows[tied[0]]['model']} = {closest.value:+.3f}, paired {share} interval {closest.low:+.3f} to "
              f"{closest.high:+.3f} on these {evidence.sample(best['run'], tied[0]).words}). {best['model']} is "
              "recommended, the best on validation though not by a clear margin")
    if closest.clear and closest.value <= luck:
        reason += _luck_words(best, metric, name)
    if cheaper is not None:
        reason += (f"; {cheaper['model']} is as good within the noise and cheaper to train and serve — choose it "
                   "if that matters more than a possible point or two")
    return Recommendation(str(best["run"]), metric, float(best[f"validation {metric}"]),
                          _with_test_and_speed(reason, best, metric), clear=False, tied=tuple(candidates),
                          cheaper=None if cheaper is None else str(cheaper["run"]))


def _luck(row: pd.Series, metric: str) -> float:
    """A lead no larger than this may be the luck of the epoch a fine-tuned run kept (0 for other runs)."""
    excess = row.get(f"epoch excess {metric}")
    return 0.0 if excess is None or pd.isna(excess) else float(excess)


def _luck_words(row: pd.Series, metric: str, name: str) -> str:
    return (f"; {row['model']} kept the epoch that scored best on these same validation texts, "
            f"{_luck(row, metric):.3f} {name} above the epochs beside it — a lead no larger than that may be the "
            "luck of that epoch")


def _with_test_and_speed(reason: str, row: pd.Series, metric: str) -> str:
    if metric in row and pd.notna(row[metric]):
        reason += f"; on the test split it scores {row[metric]:.3f}"
    if pd.notna(row["texts/s"]):
        reason += f"; classifies about {row['texts/s']:,.0f} texts/s here"
    return reason + "."


def transformer_verdict(table: pd.DataFrame, metric: str = "macro_f1", evidence: Evidence | None = None) -> str | None:
    """Whether fine-tuning paid off here, said plainly: the best transformer against the best baseline (on the
    paired bootstrap of the validation texts when their predictions are at hand)."""
    if table.empty or not {"transformer", "baseline"} <= set(table["family"]):
        return None
    column, split = _ranking_column(table, metric)
    name = _metric_name(metric)
    best = {family: rows.sort_values(column, ascending=False, kind="stable").iloc[0]
            for family, rows in table.groupby("family")}
    transformer, baseline = best["transformer"], best["baseline"]
    scores = f"{transformer[column]:.3f} vs {baseline[column]:.3f}"
    if split == "validation" and evidence is not None and evidence.judges(metric) \
            and evidence.covers([transformer["run"], baseline["run"]]):
        gap = evidence.difference(transformer["run"], baseline["run"], metric)
        paired = (f"paired {evidence.confidence:.0%} interval {gap.low:+.3f} to {gap.high:+.3f} on "
                  f"{evidence.sample(transformer['run'], baseline['run']).words}")
        lucky = gap.clear and 0 < gap.value <= _luck(transformer, metric)
        if not gap.clear or lucky:
            return (f"The fine-tuned transformer and the best baseline, {baseline['model']}, cannot be told apart "
                    f"here ({name} {scores}; the difference {gap.value:+.3f}, {paired}"
                    f"{_luck_words(transformer, metric, name) if lucky else ''}). The baseline is cheaper "
                    "and faster to serve; a larger validation split or more data may tell them apart.")
        if gap.value > 0:
            return (f"The fine-tuned transformer beats the best baseline, {baseline['model']}, by {gap.value:.3f} "
                    f"validation {name} ({scores}; {paired}).")
        return (f"{baseline['model']} beats the fine-tuned transformer by {-gap.value:.3f} validation {name} "
                f"({scores}; {paired}): use the baseline — it is also faster and cheaper to serve.")
    gap = transformer[column] - baseline[column]
    if gap > 0:
        return (f"The fine-tuned transformer beats the best baseline, {baseline['model']}, by {gap:.3f} {split} "
                f"{name} ({scores}).")
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
