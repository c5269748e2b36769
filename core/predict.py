"""Structured predictions for any saved run: label, score, every label's score, row status.

Bad rows (empty, whitespace-only or non-string input) get a status instead of
stopping the batch; texts longer than the model reads are flagged. Texts are
scored in chunks so a caller can show progress.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

from core.classifiers import TextClassifier
from core.pretrained import load_tokenizer

CHUNK_SIZE = 256


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


class Predictor:
    """Wraps a trained model for batch prediction with a review threshold."""

    def __init__(self, model: TextClassifier, threshold: float = 0.0, max_length: int | None = None,
                 tokenizer_name: str | None = None) -> None:
        self.model, self.threshold = model, threshold
        self.max_length = max_length
        self._tokenizer = load_tokenizer(tokenizer_name) if tokenizer_name and max_length else None

    def _truncated(self, texts: list[str]) -> list[bool]:
        if self._tokenizer is None:
            return [False] * len(texts)
        ids = self._tokenizer(texts, add_special_tokens=True, truncation=False, verbose=False)["input_ids"]
        return [len(i) > self.max_length for i in ids]

    def predict(self, inputs: Sequence[Any], on_progress: Callable[[int, int], None] | None = None) -> list[Prediction]:
        """One :class:`Prediction` per input, in input order."""
        results: list[Prediction | None] = [None] * len(inputs)
        valid: list[int] = []
        for i, value in enumerate(inputs):
            if not isinstance(value, str):
                results[i] = Prediction("not_text", message=f"expected text, got {type(value).__name__}")
            elif not value.strip():
                results[i] = Prediction("empty", message="empty or whitespace-only text")
            else:
                valid.append(i)
        labels = self.model.label_names
        for start in range(0, len(valid), CHUNK_SIZE):
            chunk = valid[start:start + CHUNK_SIZE]
            texts = [inputs[i] for i in chunk]
            scores = self.model.predict_proba(texts)
            for i, row, truncated in zip(chunk, scores, self._truncated(texts)):
                best = int(row.argmax())
                results[i] = Prediction(
                    "ok", labels[best], float(row[best]),
                    {name: float(s) for name, s in zip(labels, row)},
                    needs_review=float(row[best]) < self.threshold, truncated=truncated,
                )
            if on_progress is not None:
                on_progress(min(start + CHUNK_SIZE, len(valid)), len(valid))
        return results  # type: ignore[return-value]
