"""Structured predictions: label, score, every label's score, review flag, row status.

Bad rows (empty, whitespace-only or non-string input) get a status instead of
stopping the batch; texts longer than the model reads are flagged. Texts are
scored in chunks so a caller can show progress.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable, Sequence

import numpy as np

from core.models.classifiers import TextClassifier

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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

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
                 chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        self.scorer, self.label_names = scorer, list(label_names)
        self.threshold, self.chunk_size = threshold, chunk_size

    @classmethod
    def for_model(cls, model: TextClassifier, threshold: float = 0.0,
                  chunk_size: int = DEFAULT_CHUNK_SIZE) -> "Predictor":
        return cls(model.score, model.label_names, threshold, chunk_size)

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
            for i, row, truncated in zip(chunk, scores, truncated_texts):
                best = int(row.argmax())
                results[i] = Prediction(
                    "ok", self.label_names[best], float(row[best]),
                    {name: float(s) for name, s in zip(self.label_names, row)},
                    needs_review=float(row[best]) < self.threshold, truncated=truncated,
                )
            if on_progress is not None:
                on_progress(min(start + self.chunk_size, len(valid)), len(valid))
        return results  # type: ignore[return-value]
