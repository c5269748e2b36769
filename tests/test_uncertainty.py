"""Intervals and paired differences by the bootstrap: every metric as scikit-learn defines it, an interval that
covers the score and narrows with more texts, a known difference found and a null one not."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from core.evaluation.uncertainty import METRICS, interval, paired_difference, resamples, scores

SKLEARN = {
    "accuracy": accuracy_score,
    "macro_f1": lambda t, p: f1_score(t, p, average="macro", zero_division=0),
    "macro_precision": lambda t, p: precision_score(t, p, average="macro", zero_division=0),
    "macro_recall": lambda t, p: recall_score(t, p, average="macro", zero_division=0),
    "weighted_f1": lambda t, p: f1_score(t, p, average="weighted", zero_division=0),
}


def predictions(n: int, labels: int, right: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """True labels (imbalanced) and predictions right with probability ``right``, wrong ones spread."""
    rng = np.random.default_rng(seed)
    y_true = rng.choice(labels, size=n, p=np.linspace(1, 3, labels) / np.linspace(1, 3, labels).sum())
    wrong = rng.random(n) > right
    y_pred = np.where(wrong, rng.integers(0, labels, n), y_true)
    return y_true, y_pred


@pytest.mark.parametrize("metric", METRICS)
def test_each_metric_is_scikit_learn_s_on_every_resample(metric):
    y_true, y_pred = predictions(300, 7, 0.6, seed=1)
    y_pred[y_pred == 6] = 5  # a label never predicted: precision 0, as scikit-learn counts it
    index = resamples(y_true, 20, seed=2)
    mine = scores(y_true[index], y_pred[index], 7, metric)
    theirs = [SKLEARN[metric](y_true[i], y_pred[i]) for i in index]
    assert mine == pytest.approx(theirs, abs=1e-12)


def test_resamples_keep_each_label_s_count():
    y_true = np.array([0] * 5 + [1] * 2 + [2] * 40)
    index = resamples(y_true, 50, seed=0)
    for row in index:
        assert np.bincount(y_true[row], minlength=3).tolist() == [5, 2, 40]
    assert len({tuple(row) for row in index}) == 50


def test_the_interval_covers_the_score_and_narrows_with_more_texts():
    small = interval(*predictions(100, 5, 0.7, seed=3), labels=5)
    large = interval(*predictions(3000, 5, 0.7, seed=3), labels=5)
    for found in (small, large):
        assert found.low <= found.value <= found.high
    assert (large.high - large.low) < (small.high - small.low) / 3
    expected = 0.7 + 0.3 / 5  # right 70 % of the time, and a fifth of the random guesses are right too
    assert interval(*predictions(3000, 5, 0.7, seed=3), labels=5, metric="accuracy").low < expected
    assert expected < interval(*predictions(3000, 5, 0.7, seed=3), labels=5, metric="accuracy").high
    assert interval(*predictions(100, 5, 0.7, seed=3), labels=5) == small  # seeded


def test_a_real_difference_is_clear_and_a_null_one_is_not():
    y_true, better = predictions(600, 10, 0.80, seed=4)
    rng = np.random.default_rng(5)
    worse = better.copy()
    spoiled = rng.choice(len(y_true), 60, replace=False)  # 10 % of its texts made wrong
    worse[spoiled] = (y_true[spoiled] + 1) % 10
    found = paired_difference(y_true, better, worse, 10)
    assert found.clear and found.low > 0 and found.value > 0.05

    null = []
    for seed in range(5):  # as good, but right and wrong on other texts: 30 of its right ones swapped for wrong
        draw = np.random.default_rng(seed)
        twin = better.copy()
        right, wrong = np.flatnonzero(better == y_true), np.flatnonzero(better != y_true)
        made_wrong, made_right = draw.choice(right, 30, replace=False), draw.choice(wrong, 30, replace=False)
        twin[made_wrong], twin[made_right] = (y_true[made_wrong] + 1) % 10, y_true[made_right]
        null.append(paired_difference(y_true, better, twin, 10, seed=seed))
    assert not any(d.clear for d in null), null
    assert all(d.low < 0 < d.high for d in null)
    same = paired_difference(y_true, better, better, 10)
    assert (same.value, same.low, same.high, same.clear) == (0.0, 0.0, 0.0, False)


def test_pairing_finds_a_small_lead_that_separate_intervals_cannot():
    """A lead of 2 points on 500 texts: the runs' own intervals overlap, the paired one does not."""
    y_true, a = predictions(500, 4, 0.85, seed=7)
    b = a.copy()
    right = np.flatnonzero(a == y_true)
    b[right[:10]] = (y_true[right[:10]] + 1) % 4  # 10 texts B gets wrong that A gets right: 2 points
    first, second = interval(y_true, a, 4, "accuracy"), interval(y_true, b, 4, "accuracy")
    assert first.low < second.high  # overlapping on their own
    assert paired_difference(y_true, a, b, 4, "accuracy").clear


def test_unpaired_predictions_and_unknown_metrics_are_refused():
    with pytest.raises(ValueError, match="same texts: 3, 2 and 3"):
        paired_difference(np.array([0, 1, 0]), np.array([0, 1]), np.array([0, 1, 1]), 2)
    with pytest.raises(ValueError, match="no interval for 'auc'"):
        interval(np.array([0, 1]), np.array([0, 1]), 2, "auc")
