"""Classification metrics as plain data (JSON-ready), with undefined values made explicit."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from sklearn.metrics import accuracy_score, precision_recall_fscore_support


def headline_metrics(y_true: Sequence[int], y_pred: Sequence[int], n_labels: int) -> dict[str, float]:
    """Accuracy and macro/weighted precision, recall and F1 over all ``n_labels`` classes.

    A class that is never predicted has an undefined precision; it counts as 0
    here (``zero_division=0``) and :func:`per_class_metrics` reports it as undefined.
    """
    labels = list(range(n_labels))
    result: dict[str, float] = {"accuracy": float(accuracy_score(y_true, y_pred))}
    for average in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels, average=average,
                                                     zero_division=0)
        result.update({f"{average}_precision": float(p), f"{average}_recall": float(r), f"{average}_f1": float(f)})
    return result


def per_class_metrics(y_true: Sequence[int], y_pred: Sequence[int], label_names: Sequence[str]) -> list[dict[str, Any]]:
    """Precision/recall/F1/support per class; ``None`` where a value is undefined (no predictions or no examples)."""
    labels = list(range(len(label_names)))
    p, r, f, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, average=None,
                                                       zero_division=np.nan)
    predicted = np.bincount(np.asarray(y_pred, dtype=int), minlength=len(labels))
    rows = []
    for i, name in enumerate(label_names):
        rows.append({
            "label": name,
            "precision": None if np.isnan(p[i]) else float(p[i]),
            "recall": None if np.isnan(r[i]) else float(r[i]),
            "f1": None if np.isnan(f[i]) else float(f[i]),
            "support": int(support[i]),
            "predicted": int(predicted[i]),
        })
    return rows
