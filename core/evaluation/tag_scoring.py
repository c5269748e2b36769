"""How a multi-label model does on a split of its dataset version: the tag sets it gives (its own per-tag
thresholds) against the true ones, as micro/macro/samples-F1, subset accuracy, Hamming loss and per-tag rows;
the test split's scores kept in the run folder for the Evaluate page (the texts it tagged wrong, which tags were
missing or extra, and which tags come together)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.data.dataset_versions import DatasetVersion
from core.models.classifiers import TextClassifier
from core.models.multilabel import TAG_MATRIX_DTYPE, indicator, multilabel_metrics, per_tag_metrics
from core.platform.workspace import read_json, write_json_atomic

#: The test split's texts, true tags, scores and thresholds, in a tagger's run folder.
TAG_SCORES_FILE = "test_tag_scores.json"
#: The validation split's, the run compared with others by them (core.evaluation.tag_uncertainty).
VALIDATION_TAG_SCORES_FILE = "validation_tag_scores.json"


@dataclass
class TagEvaluation:
    """A multi-label model's figures on one split, and what they come from."""

    metrics: dict[str, float]
    per_tag: list[dict[str, Any]]
    examples: int
    texts_per_second: float
    names: list[str]
    texts: list[str]
    truth: np.ndarray
    scores: np.ndarray
    thresholds: tuple[float, ...]
    at_least_one: bool

    @property
    def given(self) -> np.ndarray:
        from core.models.multilabel import decide

        return decide(self.scores, np.asarray(self.thresholds), self.at_least_one)

    def to_dict(self) -> dict[str, Any]:
        return {"names": self.names, "texts": self.texts, "truth": self.truth.tolist(),
                "scores": np.round(self.scores, 6).tolist(), "thresholds": list(self.thresholds),
                "at_least_one": self.at_least_one, "texts_per_second": self.texts_per_second}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TagEvaluation":
        names = data["names"]
        truth = np.asarray(data["truth"], dtype=TAG_MATRIX_DTYPE).reshape(-1, len(names))
        scores = np.asarray(data["scores"], dtype=float).reshape(-1, len(names))
        return scored(names, data["texts"], truth, scores, tuple(data["thresholds"]), data["at_least_one"],
                      data["texts_per_second"])


def scored(names: list[str], texts: list[str], truth: np.ndarray, scores: np.ndarray, thresholds: tuple[float, ...],
           at_least_one: bool, texts_per_second: float) -> TagEvaluation:
    """The evaluation of ``scores`` under the thresholds against ``truth``."""
    from core.models.multilabel import decide

    given = decide(scores, np.asarray(thresholds), at_least_one)
    return TagEvaluation(multilabel_metrics(truth, given), per_tag_metrics(truth, given, names, thresholds),
                         len(texts), texts_per_second, names, texts, truth, scores, thresholds, at_least_one)


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
    scores = model.predict_proba(texts)
    speed = len(texts) / max(time.perf_counter() - started, 1e-9)
    return scored(list(version.labels), texts, truth, scores, model.decisions.thresholds,
                  model.decisions.at_least_one, speed)


def save_tag_scores(folder: Path, evaluation: TagEvaluation, name: str = TAG_SCORES_FILE) -> None:
    write_json_atomic(folder / name, evaluation.to_dict())


def load_tag_scores(folder: Path, name: str = TAG_SCORES_FILE) -> TagEvaluation | None:
    path = folder / name
    return TagEvaluation.from_dict(read_json(path)) if path.exists() else None


def tag_mistakes(evaluation: TagEvaluation) -> pd.DataFrame:
    """The texts whose tag set was wrong: the right tags, the tags given, the ones it missed and the ones it added,
    most wrong decisions first."""
    names, given = evaluation.names, evaluation.given
    rows = []
    for i, text in enumerate(evaluation.texts):
        missing = [names[j] for j in np.flatnonzero((evaluation.truth[i] == 1) & (given[i] == 0))]
        extra = [names[j] for j in np.flatnonzero((evaluation.truth[i] == 0) & (given[i] == 1))]
        if missing or extra:
            rows.append({"text": text, "right tags": "; ".join(names[j] for j in np.flatnonzero(evaluation.truth[i])),
                         "tags given": "; ".join(names[j] for j in np.flatnonzero(given[i])),
                         "missing": "; ".join(missing), "extra": "; ".join(extra), "wrong": len(missing) + len(extra)})
    frame = pd.DataFrame(rows, columns=["text", "right tags", "tags given", "missing", "extra", "wrong"])
    return frame.sort_values("wrong", ascending=False, kind="stable").reset_index(drop=True)


def co_occurrence(evaluation: TagEvaluation) -> pd.DataFrame:
    """How many test texts carry each pair of tags (the diagonal: each tag's texts)."""
    truth = evaluation.truth.astype(int)
    return pd.DataFrame(truth.T @ truth, index=evaluation.names, columns=evaluation.names)
