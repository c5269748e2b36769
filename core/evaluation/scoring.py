"""How good a trained run is and where it fails: metrics, confusion, confidence, errors.

A run's test-split and validation-split scores are stored with the run when it finishes
(``test_scores.json``, ``validation_scores.json``), so evaluating and comparing runs never re-runs a model;
evaluating on another labelled file scores it on demand.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import classification_report, confusion_matrix

from core.models.classifiers import TextClassifier
from core.data.dataset_versions import DatasetVersion
from core.data.ingest import RawTable
from core.models.metrics import headline_metrics, per_class_metrics
from core.data.validate import label_key, label_text, select_fields
from core.platform.workspace import read_json, write_json_atomic

SCORES_FILE = "test_scores.json"
#: The validation split's scores, kept too: comparing runs on it needs each text's prediction (the paired
#: bootstrap of core.evaluation.uncertainty), not only the run's metrics.
VALIDATION_SCORES_FILE = "validation_scores.json"
#: Review thresholds at which the accuracy/coverage curve is drawn.
THRESHOLDS = tuple(round(t, 2) for t in np.linspace(0.0, 1.0, 101))
CALIBRATION_BINS = 10


class EvaluationError(ValueError):
    """Data that cannot be evaluated against a run, with what and where."""


@dataclass
class ScoredSet:
    """Labelled texts with a model's score for every label, and how long scoring took."""

    texts: list[str]
    y_true: np.ndarray
    scores: np.ndarray  # (n_texts, n_labels), rows sum to 1
    labels: list[str]
    source: str
    lines: list[int] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def y_pred(self) -> np.ndarray:
        return self.scores.argmax(axis=1)

    @property
    def top_scores(self) -> np.ndarray:
        return self.scores.max(axis=1)

    @property
    def texts_per_second(self) -> float | None:
        return len(self.texts) / self.seconds if self.seconds > 0 else None

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "labels": self.labels, "texts": self.texts, "lines": self.lines,
                "y_true": self.y_true.tolist(), "scores": np.round(self.scores, 6).tolist(),
                "seconds": self.seconds}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ScoredSet":
        n_labels = len(data["labels"])
        return cls(texts=data["texts"], y_true=np.asarray(data["y_true"], dtype=int),
                   scores=np.asarray(data["scores"], dtype=float).reshape(-1, n_labels), labels=data["labels"],
                   source=data["source"], lines=data.get("lines", []), seconds=data.get("seconds", 0.0))


def score_texts(model: TextClassifier, texts: list[str], y_true: Sequence[int], source: str,
                lines: list[int] | None = None) -> ScoredSet:
    """Score ``texts`` with ``model``, timing the call (the run's inference speed)."""
    started = time.perf_counter()
    scores = model.predict_proba(texts) if texts else np.zeros((0, len(model.label_names)))
    seconds = time.perf_counter() - started
    return ScoredSet(list(texts), np.asarray(y_true, dtype=int), np.asarray(scores, dtype=float),
                     list(model.label_names), source, list(lines or []), seconds)


def score_split(model: TextClassifier, version: DatasetVersion, split: str) -> ScoredSet:
    part = version.split_frame(split)
    lines = part["line"].astype(int).tolist() if "line" in part else []
    return score_texts(model, part["text"].tolist(), part["label_id"].to_numpy(), f"{split} split of {version.ref}",
                       lines)


def save_scores(folder: Path, scored: ScoredSet, name: str = SCORES_FILE) -> None:
    write_json_atomic(folder / name, scored.to_dict())


def load_scores(folder: Path, name: str = SCORES_FILE) -> ScoredSet | None:
    path = folder / name
    return ScoredSet.from_dict(read_json(path)) if path.exists() else None


def labelled_rows(table: RawTable, text_field: str, label_field: str, labels: list[str]) -> tuple[list[str], list[int], list[int]]:
    """Texts, label ids and line numbers of a labelled file, checked against a run's labels.

    Rows without usable text or label are an error naming their lines, as are
    labels the run never learned (matched ignoring case and surrounding spaces).
    """
    for needed in (text_field, label_field):
        if needed not in table.columns:
            raise EvaluationError(f"{table.source}: no field {needed!r}; fields are {', '.join(table.columns)}")
    frame = select_fields(table, text_field, label_field)
    known = {label_key(name): i for i, name in enumerate(labels)}
    texts, ids, lines, bad, unknown = [], [], [], [], {}
    for line, text, label in frame.itertuples(index=False):
        name = label_text(label)
        if not isinstance(text, str) or not text.strip() or name is None:
            bad.append(line)
        elif label_key(name) not in known:
            unknown.setdefault(name, []).append(line)
        else:
            texts.append(text)
            ids.append(known[label_key(name)])
            lines.append(line)
    if bad:
        raise EvaluationError(f"{table.source}: {len(bad)} row(s) lack a text or a label "
                              f"(line {', '.join(map(str, bad[:6]))}{'…' if len(bad) > 6 else ''})")
    if unknown:
        listed = "; ".join(f"{name!r} (line {', '.join(map(str, rows[:3]))})" for name, rows in list(unknown.items())[:5])
        raise EvaluationError(f"{table.source}: labels the model was not trained on: {listed}. "
                              f"It knows: {', '.join(labels)}")
    if not texts:
        raise EvaluationError(f"{table.source}: no labelled rows to evaluate")
    return texts, ids, lines


def threshold_curve(top: np.ndarray, correct: np.ndarray, thresholds: Sequence[float] = THRESHOLDS) -> list[dict]:
    """At each review threshold: the share of texts scored at or above it, and their accuracy.

    Texts below the threshold would go to a person; the curve shows what the
    model alone gets right on the rest.
    """
    rows = []
    for t in thresholds:
        kept = top >= t
        rows.append({"threshold": float(t), "share_kept": float(kept.mean()) if len(top) else 0.0,
                     "accuracy_kept": float(correct[kept].mean()) if kept.any() else None})
    return rows


def expected_calibration_error(top: np.ndarray, correct: np.ndarray, bins: int = CALIBRATION_BINS) -> float:
    """Average gap between confidence and accuracy over equal-width confidence bins, weighted by bin size."""
    if not len(top):
        return 0.0
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(top, edges[1:-1], right=True), 0, bins - 1)
    gap = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            gap += members.mean() * abs(correct[members].mean() - top[members].mean())
    return float(gap)


@dataclass
class Evaluation:
    """Everything the Evaluate page and the reports show about one scored set."""

    source: str
    labels: list[str]
    metrics: dict[str, float]
    per_class: list[dict[str, Any]]
    report: dict[str, Any]
    report_text: str
    confusion: list[list[int]]
    confusion_normalised: list[list[float]]
    calibration_error: float
    threshold_curve: list[dict[str, Any]]
    confidence: pd.DataFrame  # one row per text: top score and whether it was right
    errors: pd.DataFrame  # misclassified texts, most confident first
    examples: int
    texts_per_second: float | None

    @property
    def undefined_precision(self) -> list[str]:
        """Labels the model never predicted: their precision is undefined, not zero."""
        return [row["label"] for row in self.per_class if row["precision"] is None]

    def summary(self) -> dict[str, Any]:
        """The JSON-ready part: metrics and report, without per-text tables."""
        return {"source": self.source, "examples": self.examples, "metrics": self.metrics,
                "per_class": self.per_class, "calibration_error": self.calibration_error,
                "texts_per_second": self.texts_per_second, "confusion": self.confusion,
                "undefined_precision": self.undefined_precision, "classification_report": self.report}


def _report(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]) -> tuple[dict, str]:
    """scikit-learn's classification report, with undefined values as None/"nan" and no warnings."""
    ids = list(range(len(labels)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        data = classification_report(y_true, y_pred, labels=ids, target_names=labels, output_dict=True,
                                     zero_division=np.nan)
        text = classification_report(y_true, y_pred, labels=ids, target_names=labels, digits=3,
                                     zero_division=np.nan)

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        value = float(value)
        return None if np.isnan(value) else value

    return clean(data), text


def misclassified(scored: ScoredSet) -> pd.DataFrame:
    """The wrong predictions with true and predicted label and confidence, most confident first."""
    y_pred, top = scored.y_pred, scored.top_scores
    wrong = np.flatnonzero(y_pred != scored.y_true)
    frame = pd.DataFrame({
        "line": [scored.lines[i] for i in wrong] if scored.lines else [None] * len(wrong),
        "text": [scored.texts[i] for i in wrong],
        "true label": [scored.labels[scored.y_true[i]] for i in wrong],
        "predicted": [scored.labels[y_pred[i]] for i in wrong],
        "confidence": top[wrong].astype(float),
        "score of true label": scored.scores[wrong, scored.y_true[wrong]].astype(float),
    })
    return frame.sort_values("confidence", ascending=False, kind="stable").reset_index(drop=True)


def filter_errors(errors: pd.DataFrame, true_label: str | None = None, predicted: str | None = None) -> pd.DataFrame:
    """The error table narrowed to one true/predicted pair (None means any)."""
    keep = pd.Series(True, index=errors.index)
    if true_label is not None:
        keep &= errors["true label"] == true_label
    if predicted is not None:
        keep &= errors["predicted"] == predicted
    return errors[keep]


def evaluate(scored: ScoredSet) -> Evaluation:
    """All metrics of one scored set."""
    if not len(scored.texts):
        raise EvaluationError(f"{scored.source}: nothing to evaluate (no labelled texts)")
    ids = list(range(len(scored.labels)))
    y_true, y_pred, top = scored.y_true, scored.y_pred, scored.top_scores
    correct = y_pred == y_true
    counts = confusion_matrix(y_true, y_pred, labels=ids)
    support = counts.sum(axis=1, keepdims=True)
    normalised = np.divide(counts, support, out=np.zeros(counts.shape, dtype=float), where=support > 0)
    report, report_text = _report(y_true, y_pred, scored.labels)
    return Evaluation(
        source=scored.source, labels=scored.labels,
        metrics=headline_metrics(y_true, y_pred, len(scored.labels)),
        per_class=per_class_metrics(y_true, y_pred, scored.labels),
        report=report, report_text=report_text,
        confusion=counts.tolist(), confusion_normalised=normalised.round(4).tolist(),
        calibration_error=expected_calibration_error(top, correct),
        threshold_curve=threshold_curve(top, correct),
        confidence=pd.DataFrame({"confidence": top, "outcome": np.where(correct, "correct", "wrong")}),
        errors=misclassified(scored), examples=len(scored.texts), texts_per_second=scored.texts_per_second,
    )
