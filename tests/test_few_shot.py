"""The few-shot kind's pairs: ranking batches never hold a label twice, similarity pairs are half same-label and
half other-label, and the loss follows the number of labels unless set."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from core.models.few_shot import RANKING_MIN_LABELS, FewShotSettings, ranking_pairs, similarity_pairs

TEXTS = [f"text {label}-{i}" for label in range(12) for i in range(8)]
LABELS = [label for label in range(12) for _ in range(8)]
LABEL_OF = dict(zip(TEXTS, LABELS))


def test_ranking_pairs_share_a_label_and_no_batch_holds_a_label_twice():
    pairs, sizes = ranking_pairs(TEXTS, LABELS, rounds=3, batch_size=5, rng=random.Random(0))
    assert Counter(pairs["anchor"]) == {text: 3 for text in TEXTS}
    assert all(LABEL_OF[a] == LABEL_OF[p] and a != p for a, p in zip(pairs["anchor"], pairs["positive"]))
    assert sum(sizes) == len(pairs["anchor"]) and max(sizes) == 5
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    batches = [pairs["anchor"][start:start + size] for start, size in zip(starts, sizes)]
    assert all(len({LABEL_OF[t] for t in batch}) == len(batch) for batch in batches)
    assert sum(size < 5 for size in sizes) <= 3  # full but for the last few, when few labels are left


def test_similarity_pairs_are_half_of_the_same_label_half_of_another():
    pairs = similarity_pairs(TEXTS, LABELS, rounds=2, rng=random.Random(0))
    assert len(pairs["score"]) == 2 * 2 * len(TEXTS) and sum(pairs["score"]) == 2 * len(TEXTS)
    for first, second, score in zip(pairs["sentence1"], pairs["sentence2"], pairs["score"]):
        assert (LABEL_OF[first] == LABEL_OF[second]) == (score == 1.0)


def test_the_loss_follows_the_number_of_labels_unless_it_is_set():
    assert FewShotSettings().loss_for(RANKING_MIN_LABELS) == "ranking"
    assert FewShotSettings().loss_for(RANKING_MIN_LABELS - 1) == "similarity"
    assert FewShotSettings(loss="ranking").loss_for(2) == "ranking"
    with pytest.raises(ValueError, match="loss must be one of"):
        FewShotSettings(loss="triplet")
    with pytest.raises(ValueError, match="batch_size at least 2"):
        FewShotSettings(batch_size=1)
