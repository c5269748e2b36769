"""Which texts the queue asks about: uncertain ones, spread over the embedding space (not ten near-copies of
one confusion)."""

from __future__ import annotations

import numpy as np
import pytest

from core.models.active_learning import margins, propose


def test_margin_is_the_lead_of_the_best_label_over_the_second():
    scores = np.array([[0.5, 0.3, 0.2], [0.34, 0.33, 0.33], [1.0, 0.0, 0.0]])
    assert margins(scores) == pytest.approx([0.2, 0.01, 1.0])
    assert margins(np.ones((2, 1))).tolist() == [1.0, 1.0]


def regions(seed: int = 0):
    """Four far-apart regions of 30 texts; the first holds the 30 most uncertain, the others less so."""
    rng = np.random.default_rng(seed)
    centres = np.eye(4) * 10
    vectors = np.vstack([centre + rng.normal(0, 0.1, (30, 4)) for centre in centres])
    margin = np.concatenate([rng.uniform(0.00, 0.05, 30), rng.uniform(0.10, 0.20, 30),
                             rng.uniform(0.20, 0.30, 30), rng.uniform(0.60, 0.90, 30)])
    probabilities = np.column_stack([(1 + margin) / 2, (1 - margin) / 2])
    return probabilities, vectors, margin


def test_a_batch_takes_the_most_uncertain_text_of_each_region_not_the_first_region_only():
    probabilities, vectors, margin = regions()
    chosen = propose(probabilities, vectors, batch=4, pool_factor=30)
    assert sorted(i // 30 for i in chosen) == [0, 1, 2, 3]  # plain uncertainty would take four of region 0
    assert sorted(np.argsort(margin)[:4] // 30) == [0, 0, 0, 0]
    for i in chosen:  # within its region, the most uncertain
        region = slice(i // 30 * 30, i // 30 * 30 + 30)
        assert margin[i] == margin[region].min()
    assert [margin[i] for i in chosen] == sorted(margin[i] for i in chosen)  # most uncertain first


def test_the_pool_keeps_the_batch_among_the_uncertain():
    probabilities, vectors, margin = regions(1)
    chosen = propose(probabilities, vectors, batch=4, pool_factor=15)  # pool: the 60 most uncertain (regions 0-1)
    assert {i // 30 for i in chosen} == {0, 1} and len(chosen) == 4


def test_identical_texts_still_fill_the_batch_and_small_sets_are_taken_whole():
    same = np.ones((12, 3))
    scores = np.column_stack([np.linspace(0.5, 1, 12), 1 - np.linspace(0.5, 1, 12)])
    assert propose(scores, same, batch=5) == [0, 1, 2, 3, 4]
    assert propose(scores[:3], same[:3], batch=5) == [0, 1, 2]
    with pytest.raises(ValueError, match="3 rows of scores but 12"):
        propose(scores[:3], same, batch=2)
