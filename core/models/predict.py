"""Structured predictions: label, score, every label's score, review flag, row status; for a multi-label model
also the tags given (``labels``), its ``label`` then the tags joined by "; " and its ``score`` the certainty of the
least certain tag decision (a tag's score where given, one minus it where not), which the review threshold judges.

Bad rows (empty, whitespace-only or non-string input) get a status instead of
stopping the batch; texts longer than the model reads are flagged. Texts are
scored in chunks so a caller can show progress.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable, Sequence

import numpy as np

from core.models.classifiers import TextClassifier
from core.models.multilabel import TagDecisions
from core.presentation.exports import TAG_JOIN  # how a tagger's tags are joined into its one-line label


DEFAULT_CHUNK_SIZE = 256
#: Texts → (scores per label, whether each text was cut at the model's input limit).
Scorer = Callable[[list[str]], tuple[np.ndarray, list[bool]]]


@dataclass
class Prediction:
    """The outcome for one input row."""

    status: str  # ok | empty | not_text
    label: str | None = None
    score: float | None = None
    scores: dict[str, float] = field(default_factory=dict)
    needs_review: bool = False
    truncated: bool = False
    message: str = ""
    #: A multi-label model's tags (None from a single-label model).
    labels: list[str] | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.labels is None:
            del data["labels"]
        return data

    def at_threshold(self, threshold: float) -> "Prediction":
        """The same prediction judged against another review threshold."""
        flagged = self.status == "ok" and self.score is not None and self.score < threshold
        return replace(self, needs_review=flagged)


def row_status(value: Any) -> Prediction | None:
    """A finished Prediction for input that cannot be scored, or None for real text."""
    if not isinstance(value, str):
        kind = "nothing" if value is None else type(value).__name__
        return Prediction("not_text", message=f"expected text, got {kind}")
    if not value.strip():
        return Prediction("empty", message="empty or whitespace-only text")
    return None


class Predictor:
    """Scores texts with a model's scorer and applies the review threshold."""

    def __init__(self, scorer: Scorer, label_names: list[str], threshold: float = 0.0,
                 chunk_size: int = DEFAULT_CHUNK_SIZE, decisions: TagDecisions | None = None) -> None:
        self.scorer, self.label_names = scorer, list(label_names)
        self.threshold, self.chunk_size, self.decisions = threshold, chunk_size, decisions

    @classmethod
    def for_model(cls, model: TextClassifier, threshold: float = 0.0,
                  chunk_size: int = DEFAULT_CHUNK_SIZE) -> "Predictor":
        return cls(model.score, model.label_names, threshold, chunk_size, model.decisions)

    def _scored(self, row: np.ndarray, given: np.ndarray | None, truncated: bool) -> Prediction:
        """One text's prediction from its scores (and, multi-label, the tags given)."""
        scores = {name: float(s) for name, s in zip(self.label_names, row)}
        if given is None:
            best = int(row.argmax())
            return Prediction("ok", self.label_names[best], float(row[best]), scores,
                              needs_review=float(row[best]) < self.threshold, truncated=truncated)
        tags = [self.label_names[j] for j in np.flatnonzero(given)]
        certainty = float(np.where(given == 1, row, 1.0 - row).min())
        return Prediction("ok", TAG_JOIN.join(tags), certainty, scores, needs_review=certainty < self.threshold,
                          truncated=truncated, labels=tags)

    def predict(self, inputs: Sequence[Any], on_progress: Callable[[int, int], None] | None = None) -> list[Prediction]:
        """One :class:`Prediction` per input, in input order; ``on_progress(done, total)`` after each chunk."""
        results: list[Prediction | None] = [row_status(value) for value in inputs]
        # Texts of similar length go into the same chunk (the model then batches each chunk by token
        # length), so a long file pads little; results still land at their input positions.
        valid = sorted((i for i, result in enumerate(results) if result is None), key=lambda i: len(inputs[i]))
        for start in range(0, len(valid), self.chunk_size):
            chunk = valid[start:start + self.chunk_size]
            texts = [inputs[i] for i in chunk]
            scores, truncated_texts = self.scorer(texts)
            given = self.decisions.apply(scores) if self.decisions is not None else [None] * len(chunk)
            for i, row, flags, truncated in zip(chunk, scores, given, truncated_texts):
                results[i] = self._scored(row, flags, truncated)
            if on_progress is not None:
                on_progress(min(start + self.chunk_size, len(valid)), len(valid))
        return results  # type: ignore[return-value]
