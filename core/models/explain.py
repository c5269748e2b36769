"""Why this label: the words that pushed a prediction towards its label and away from the runner-up.

A word's weight is its share of the margin between the two labels' scores. Exact for TF-IDF + logistic
regression (each word's TF-IDF weight times the difference of the two labels' coefficients, a bigram's split
between its words); for every other kind, occlusion: how much the margin falls when the word is left out
(one batched pass over the text's variants, so a few seconds even for the transformer on a CPU).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import numpy as np

WORD = re.compile(r"\w+", re.UNICODE)
#: Occlusion scores one variant per word: longer texts are explained on their first words only.
MAX_WORDS = 200


@dataclass(frozen=True)
class WordWeight:
    """One word of the text (by its place in it) and how much it pushed towards the label (> 0) or the
    runner-up (< 0)."""

    start: int
    end: int
    word: str
    weight: float


@dataclass(frozen=True)
class Explanation:
    label: str
    runner_up: str | None
    method: str
    words: list[WordWeight]

    def strongest(self, count: int = 3) -> list[WordWeight]:
        """The words that pushed hardest towards the label."""
        return sorted((w for w in self.words if w.weight > 0), key=lambda w: -w.weight)[:count]


def top_two(scores: np.ndarray) -> tuple[int, int | None]:
    """The predicted label's index and the runner-up's (None with one label)."""
    order = np.argsort(-scores, kind="stable")
    return int(order[0]), (int(order[1]) if len(order) > 1 else None)


def occlusion(predict_proba: Callable[[list[str]], np.ndarray], text: str, label: int,
              runner_up: int | None) -> list[WordWeight]:
    """Each word's weight: the margin (label minus runner-up, or the label's score alone) with the text as it
    is, minus the margin with that word left out."""
    words = list(WORD.finditer(text))[:MAX_WORDS]
    if not words:
        return []
    variants = [text[:match.start()] + text[match.end():] for match in words]
    scores = predict_proba([text, *variants])

    def margin(row: np.ndarray) -> np.ndarray:
        return row[:, label] - (row[:, runner_up] if runner_up is not None else 0.0)

    margins = margin(scores)
    return [WordWeight(m.start(), m.end(), m.group(), float(margins[0] - margins[i + 1]))
            for i, m in enumerate(words)]


def linear_contributions(vectoriser, coefficients: np.ndarray, text: str) -> list[WordWeight]:
    """Exact weights for a linear model over TF-IDF features: each feature's value times its coefficient
    (``coefficients``: one per vocabulary entry). The words are the vectoriser's own tokens (its preprocessing
    and token pattern), found in the text as written; a bigram's share is split between its two words and a
    feature that occurs several times between its occurrences."""
    preprocess, token = vectoriser.build_preprocessor(), re.compile(vectoriser.token_pattern)
    tokens = [(match, key) for match in WORD.finditer(text) if token.fullmatch(key := preprocess(match.group()))]
    vector = vectoriser.transform([text]).tocsr()
    contribution = {int(i): float(v * coefficients[i]) for i, v in zip(vector.indices, vector.data)}
    occurrences: dict[int, list[int]] = {}
    grams = [(key, [p]) for p, (_, key) in enumerate(tokens)]
    grams += [(f"{tokens[p][1]} {tokens[p + 1][1]}", [p, p + 1]) for p in range(len(tokens) - 1)]
    for gram, positions in grams:
        feature = vectoriser.vocabulary_.get(gram)
        if feature is not None and feature in contribution:
            occurrences.setdefault(feature, []).extend(positions)
    weights = [0.0] * len(tokens)
    for feature, positions in occurrences.items():
        for position in positions:
            weights[position] += contribution[feature] / len(positions)
    return [WordWeight(m.start(), m.end(), m.group(), weight) for (m, _), weight in zip(tokens, weights)]


