"""More evidence where it is cheap: a kind that trains in seconds is scored by stratified k-fold cross-validation on
the train and validation splits together (the test split never touched), so its score rests on every text the
run may learn from instead of the validation split alone.

Each text is scored once, by the one of ``folds`` models that did not learn from it; each text's true and
out-of-fold predicted label are kept in the run folder, so intervals and paired differences between two such runs
are worked out on all of their texts (core.experiments.comparison.Evidence).
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from sklearn.model_selection import StratifiedKFold

from core.evaluation.scoring import ScoredSet
from core.models.classifiers import TextClassifier, TrainingCancelled, TrainingData
from core.models.metrics import headline_metrics
from core.platform.workspace import read_json, write_json_atomic

#: The out-of-fold predictions of a run, beside its validation and test scores.
CV_PREDICTIONS_FILE = "cv_predictions.json"


@dataclass(frozen=True)
class FoldReport:
    """Which fold is being fitted, for the run's progress."""

    fold: int
    folds: int


def fold_of_each_text(labels: list[int], folds: int, seed: int) -> np.ndarray:
    """The fold (0 … folds − 1) that scores each text: shuffled, each label spread over the folds as evenly as its
    count allows (a label with fewer texts than folds is absent from some folds' training texts)."""
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    marks = np.empty(len(labels), dtype=int)
    with warnings.catch_warnings():  # "the least populated class has only n members": said by the docstring
        warnings.simplefilter("ignore", UserWarning)
        for fold, (_, held_out) in enumerate(splitter.split(np.zeros(len(labels)), labels)):
            marks[held_out] = fold
    return marks


def can_cross_validate(data: TrainingData, folds: int) -> bool:
    """Whether the data allows ``folds`` folds: single-label, at least two labels, every fold a few texts."""
    labels = list(data.train_labels) + list(data.validation_labels)
    return folds >= 2 and not data.multi_label and len(set(labels)) >= 2 and len(labels) >= 2 * folds \
        and max(np.bincount(labels)) >= folds


def cross_validate(build: Callable[[], TextClassifier], data: TrainingData, folds: int, seed: int,
                   stop: threading.Event, report: Callable[[FoldReport], None] = lambda fold: None) -> ScoredSet:
    """Out-of-fold scores for every train and validation text: ``folds`` fresh models from ``build`` (the run's
    kind and settings), each fitted on the other folds' texts."""
    texts = list(data.train_texts) + list(data.validation_texts)
    labels = list(data.train_labels) + list(data.validation_labels)
    marks = fold_of_each_text(labels, folds, seed)
    scores = np.zeros((len(texts), len(data.label_names)))
    for fold in range(folds):
        if stop.is_set():
            raise TrainingCancelled()
        report(FoldReport(fold + 1, folds))
        learn = np.flatnonzero(marks != fold)
        model = build().fit(TrainingData(data.label_names, [texts[i] for i in learn], [labels[i] for i in learn]),
                            lambda event: None, stop)
        held_out = np.flatnonzero(marks == fold)
        scores[held_out] = model.predict_proba([texts[i] for i in held_out])
    return ScoredSet(texts, np.asarray(labels, dtype=int), scores, list(data.label_names),
                     f"{folds}-fold cross-validation on the train and validation splits")


def save_out_of_fold(folder: Path, scored: ScoredSet) -> None:
    """Keep each text's true and predicted label: what the comparison needs (every label's score of 10,000
    CLINC150 texts was 25 MB a run)."""
    write_json_atomic(folder / CV_PREDICTIONS_FILE, {"source": scored.source, "labels": scored.labels,
                                                     "texts": scored.texts, "y_true": scored.y_true.tolist(),
                                                     "y_pred": scored.y_pred.tolist()})


def load_out_of_fold(folder: Path) -> ScoredSet | None:
    """A run's out-of-fold predictions as a scored set whose scores are the predicted label alone (1 for it, 0
    for the others); None for a run that was not cross-validated."""
    path = folder / CV_PREDICTIONS_FILE
    if not path.exists():
        return None
    data = read_json(path)
    predicted = np.eye(len(data["labels"]))[np.asarray(data["y_pred"], dtype=int)]
    return ScoredSet(data["texts"], np.asarray(data["y_true"], dtype=int), predicted, data["labels"], data["source"])


def cv_metrics(scored: ScoredSet, folds: int) -> dict[str, float]:
    """What a run records of its cross-validation: the headline metrics of the out-of-fold scores, the folds and
    the texts they rest on."""
    return {**headline_metrics(scored.y_true, scored.y_pred, len(scored.labels)), "folds": folds,
            "texts": len(scored.texts)}
