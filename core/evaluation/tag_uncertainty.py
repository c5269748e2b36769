"""Intervals and paired differences for taggers (several tags per text), by the bootstrap over texts.

The same two tools as core.evaluation.uncertainty — one run's interval, and the paired difference of two runs
scored on the same texts — for the tag metrics runs are ranked by: micro-F1 (every text × tag decision counts
alike), macro-F1 over tags and samples-F1 (per text, then averaged). A text's tag set cannot be stratified on
the way a single label can, so the texts are resampled as they are. Each resample is a row of counts (how many
times each text was drawn) and every metric comes from count-weighted sums of per-text true positives, false
positives and false negatives, as scikit-learn defines it with ``zero_division=0`` (a tag neither true nor given
in a resample scores 0 and still counts in the macro average).
"""

from __future__ import annotations

import numpy as np

from core.evaluation.uncertainty import Difference, Interval, bounds

TAG_METRICS = ("micro_f1", "macro_f1", "samples_f1")


def draw_counts(texts: int, samples: int, seed: int) -> np.ndarray:
    """``samples`` × ``texts``: how many times each text is drawn in each resample (with replacement)."""
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, texts, size=(samples, texts))
    rows = np.arange(samples)[:, None] * texts
    return np.bincount((rows + drawn).ravel(), minlength=samples * texts).reshape(samples, texts).astype(float)


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    denominator = 2 * tp + fp + fn
    return np.divide(2 * tp, denominator, out=np.zeros_like(denominator, dtype=float), where=denominator > 0)


def tag_scores(truth: np.ndarray, given: np.ndarray, counts: np.ndarray, metric: str) -> np.ndarray:
    """``metric`` for each row of ``counts`` (resamples × texts) of the texts' true and given tag matrices."""
    if metric not in TAG_METRICS:
        raise ValueError(f"no interval for {metric!r}; one of {', '.join(TAG_METRICS)}")
    truth, given = truth.astype(bool), given.astype(bool)
    tp, fp, fn = (truth & given).astype(float), (~truth & given).astype(float), (truth & ~given).astype(float)
    if metric == "micro_f1":
        return _f1(counts @ tp.sum(axis=1), counts @ fp.sum(axis=1), counts @ fn.sum(axis=1))
    if metric == "macro_f1":
        return _f1(counts @ tp, counts @ fp, counts @ fn).mean(axis=1)
    per_text = _f1(tp.sum(axis=1), fp.sum(axis=1), fn.sum(axis=1))
    return counts @ per_text / counts.sum(axis=1)


def tag_interval(truth: np.ndarray, given: np.ndarray, metric: str = "micro_f1", samples: int = 1000,
                 confidence: float = 0.95, seed: int = 0) -> Interval:
    """One tagger's score on its texts, with its bootstrap interval."""
    value = float(tag_scores(truth, given, np.ones((1, len(truth))), metric)[0])
    return Interval(value, *bounds(tag_scores(truth, given, draw_counts(len(truth), samples, seed), metric),
                                   confidence))


def paired_tag_difference(truth: np.ndarray, given_a: np.ndarray, given_b: np.ndarray, metric: str = "micro_f1",
                          samples: int = 1000, confidence: float = 0.95, seed: int = 0) -> Difference:
    """Tagger A's score minus tagger B's on the same texts, each resample applied to both."""
    if not truth.shape == given_a.shape == given_b.shape:
        raise ValueError(f"paired taggers must tag the same texts: {truth.shape}, {given_a.shape} and "
                         f"{given_b.shape}")
    whole = np.ones((1, len(truth)))
    counts = draw_counts(len(truth), samples, seed)
    value = float(tag_scores(truth, given_a, whole, metric)[0] - tag_scores(truth, given_b, whole, metric)[0])
    return Difference(value, *bounds(tag_scores(truth, given_a, counts, metric)
                                     - tag_scores(truth, given_b, counts, metric), confidence))
