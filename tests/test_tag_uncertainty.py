"""Taggers compared with their uncertainty: intervals and paired differences of micro-, macro- and samples-F1 by
the bootstrap over texts, matching scikit-learn's definitions on the whole set."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.evaluation.tag_uncertainty import draw_counts, paired_tag_difference, tag_interval, tag_scores
from core.experiments.comparison import Evidence, recommend
from core.models.multilabel import multilabel_metrics


def tagged(seed: int = 0, texts: int = 400, tags: int = 6):
    """True tags and a tagger that misses or adds a tag now and then (with some texts untagged by both)."""
    rng = np.random.default_rng(seed)
    truth = rng.random((texts, tags)) < 0.25
    flips = rng.random((texts, tags)) < 0.15
    given = truth ^ flips
    truth[:8], given[:4] = False, False
    return truth, given


@pytest.mark.parametrize("metric", ["micro_f1", "macro_f1", "samples_f1"])
def test_each_metric_on_the_whole_set_is_scikit_learns(metric):
    truth, given = tagged()
    expected = multilabel_metrics(truth.astype(np.int8), given.astype(np.int8))[metric]
    assert tag_scores(truth, given, np.ones((1, len(truth))), metric)[0] == pytest.approx(expected)
    low_high = tag_interval(truth, given, metric, samples=500)
    assert low_high.low < expected < low_high.high and low_high.high - low_high.low < 0.2


def test_every_resample_draws_as_many_texts_as_there_are():
    counts = draw_counts(50, 200, seed=1)
    assert counts.shape == (200, 50) and (counts.sum(axis=1) == 50).all() and counts.std() > 0


def test_a_real_difference_is_found_and_a_null_one_is_not():
    truth, given = tagged(1)
    rng = np.random.default_rng(2)
    better = given.copy()
    wrong = np.argwhere(given != truth)
    fixed = wrong[rng.choice(len(wrong), len(wrong) // 2, replace=False)]
    better[fixed[:, 0], fixed[:, 1]] = truth[fixed[:, 0], fixed[:, 1]]  # half of its mistakes mended
    found = paired_tag_difference(truth, better, given, "micro_f1")
    assert found.clear and found.value > 0.05 and found.low > 0
    same_mistakes_elsewhere = given.copy()
    swap = rng.permutation(len(truth))[:40]  # as many mistakes, on other texts of the same kind
    same_mistakes_elsewhere[swap] = truth[swap] ^ (given[swap[::-1]] != truth[swap[::-1]])
    null = paired_tag_difference(truth, same_mistakes_elsewhere, given, "micro_f1")
    assert not null.clear and null.low < 0 < null.high
    with pytest.raises(ValueError, match="must tag the same texts"):
        paired_tag_difference(truth, given[:-1], given)


def test_taggers_are_recommended_with_the_uncertainty_of_the_lead():
    truth, given = tagged(3)
    texts = [f"t{i}" for i in range(len(truth))]
    rng = np.random.default_rng(4)
    worse = given ^ (rng.random(given.shape) < 0.2)
    evidence = Evidence.of_tags({"good": (texts, truth, given), "poor": (texts, truth, worse)}, 1000, 0.95, 0)
    assert evidence.tags and evidence.judges("micro_f1") and not evidence.judges("accuracy")
    table = pd.DataFrame([{"run": run, "model": run.upper(), "name": run.upper(), "kind": "tfidf_logreg",
                           "family": "baseline", "micro_f1": 0.5, "texts/s": 100.0,
                           "validation micro_f1": tag_scores(truth, tags, np.ones((1, len(truth))), "micro_f1")[0]}
                          for run, tags in (("good", given), ("poor", worse))])
    best = recommend(table, "micro_f1", evidence)
    assert best.run_id == "good" and best.clear is True
    assert "clearly above POOR" in best.reason and f"on these {len(texts)} validation texts" in best.reason
    assert Evidence.of_tags({"good": (texts, truth, given), "poor": (texts[::-1], truth, worse)}, 1000, 0.95,
                            0) is None  # not the same texts: no pairing
