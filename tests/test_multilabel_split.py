"""Multi-label splits: every tag's positives shared out near the ratios (better than a shuffled split does),
seeded, independent of row order, duplicates never straddling two splits."""

from __future__ import annotations

import random

import numpy as np

from core.data.multilabel_split import multilabel_split, tag_split_counts
from core.data.split import SplitPlan

PLAN = SplitPlan(0.8, 0.1, 0.1, seed=7)
TAGS = [f"tag{i}" for i in range(12)]


def tagged_rows(count: int = 600, seed: int = 3) -> list[tuple[str, tuple[str, ...]]]:
    """Texts with one to three tags each, tag frequencies falling off like real feedback's (tag0 common, tag11
    on about 2 % of the texts), and every tenth text repeated with other spacing and case."""
    rng = random.Random(seed)
    weights = [1 / (i + 1) for i in range(len(TAGS))]
    rows = []
    for i in range(count):
        chosen = tuple(sorted(set(rng.choices(TAGS, weights, k=rng.choice((1, 1, 2, 3))))))
        rows.append((f"feedback number {i} about {' and '.join(chosen)}", chosen))
        if i % 10 == 0:
            rows.append((f"Feedback  number {i} about {' and '.join(chosen)}".upper(), chosen))
    return rows


def deviations(tags, assignment) -> list[float]:
    """For each tag and held-out split, the gap between the split's positives and its ratio's share of them."""
    counts = tag_split_counts(tags, assignment)
    gaps = []
    for tag in TAGS:
        total = sum(counts[s].get(tag, 0) for s in counts)
        gaps += [abs(counts[split].get(tag, 0) - ratio * total)
                 for split, ratio in (("validation", PLAN.validation), ("test", PLAN.test))]
    return gaps


def test_every_tag_is_shared_out_near_the_ratios_better_than_a_shuffle():
    rows = tagged_rows()
    texts, tags = [t for t, _ in rows], [g for _, g in rows]
    assignment = multilabel_split(texts, tags, PLAN)
    counts = tag_split_counts(tags, assignment)
    assert all(counts[split].get(tag, 0) >= 1 for tag in TAGS for split in counts)  # even the rarest in each
    shuffled = list(np.random.default_rng(7).permutation(
        ["train"] * round(0.8 * len(rows)) + ["validation"] * round(0.1 * len(rows))
        + ["test"] * (len(rows) - round(0.8 * len(rows)) - round(0.1 * len(rows)))))
    ours, theirs = deviations(tags, assignment), deviations(tags, shuffled)
    assert max(ours) < 4.0 and 2 * np.mean(ours) < np.mean(theirs)
    sizes = {split: assignment.count(split) / len(rows) for split in ("train", "validation", "test")}
    assert abs(sizes["train"] - 0.8) < 0.02 and abs(sizes["test"] - 0.1) < 0.02


def test_the_split_is_seeded_order_free_and_keeps_duplicates_together():
    rows = tagged_rows(300)
    texts, tags = [t for t, _ in rows], [g for _, g in rows]
    first = multilabel_split(texts, tags, PLAN)
    assert multilabel_split(texts, tags, PLAN) == first
    order = list(range(len(rows)))
    random.Random(1).shuffle(order)
    shuffled = multilabel_split([texts[i] for i in order], [tags[i] for i in order], PLAN)
    assert [shuffled[order.index(i)] for i in range(len(rows))] == first
    by_text: dict[str, set[str]] = {}
    for text, split in zip(texts, first):
        by_text.setdefault(" ".join(text.split()).casefold(), set()).add(split)
    assert all(len(splits) == 1 for splits in by_text.values())
    assert multilabel_split(texts, tags, SplitPlan(0.8, 0.1, 0.1, seed=8)) != first


def test_untagged_rows_are_counted_and_a_split_without_test_leaves_test_empty():
    texts = [f"text {i}" for i in range(40)]
    tags = [("a",) if i % 2 else () for i in range(40)]
    assignment = multilabel_split(texts, tags, SplitPlan(0.8, 0.2, 0.0, seed=1))
    counts = tag_split_counts(tags, assignment)
    assert counts["test"] == {} and counts["validation"] == {"(no tag)": 4, "a": 4}
