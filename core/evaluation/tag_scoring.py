"""How a multi-label model does on a split of its dataset version: the tag sets it gives (its own per-tag
thresholds) against the true ones, as micro/macro/samples-F1, subset accuracy, Hamming loss and per-tag rows."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from core.data.dataset_versions import DatasetVersion
from core.models.classifiers import TextClassifier
from core.models.multilabel import indicator, multilabel_metrics, per_tag_metrics


@dataclass
class TagEvaluation:
    """A multi-label model's figures on one split."""

    metrics: dict[str, float]
    per_tag: list[dict[str, Any]]
    examples: int
    texts_per_second: float


def evaluate_tags(model: TextClassifier, version: DatasetVersion, split: str) -> TagEvaluation | None:
    """The model's tag sets on ``split`` scored against the version's (None when the split is empty)."""
    if model.decisions is None:
        raise ValueError("only a multi-label model gives tag sets")
    frame = version.split_frame(split)
    if frame.empty:
        return None
    texts = frame["text"].astype(str).tolist()
    truth = indicator(frame["tag_ids"].tolist(), len(version.labels))
    started = time.perf_counter()
    given = model.decisions.apply(model.predict_proba(texts))
    speed = len(texts) / max(time.perf_counter() - started, 1e-9)
    return TagEvaluation(multilabel_metrics(truth, given),
                         per_tag_metrics(truth, given, version.labels, model.decisions.thresholds), len(texts), speed)
