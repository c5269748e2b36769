import random
from collections import Counter

import pytest

from core.data.split import SplitPlan, split_counts, stratified_split
from core.data.validate import normalise_text

PLAN = SplitPlan(0.8, 0.1, 0.1, seed=7)


def make_data(sizes: dict[str, int], duplicates: int = 0, seed: int = 0):
    rng = random.Random(seed)
    texts, labels = [], []
    for label, n in sizes.items():
        for i in range(n):
            texts.append(f"{label} feedback {i} {rng.random():.6f}")
            labels.append(label)
    for _ in range(duplicates):  # copies with other case/spacing
        i = rng.randrange(len(texts))
        texts.append("  " + texts[i].upper())
        labels.append(labels[i])
    return texts, labels


def test_stratification_holds_within_one_example():
    sizes = {"delivery": 120, "billing": 95, "quality": 85, "service": 65, "app": 35, "rare": 3}
    texts, labels = make_data(sizes)
    counts = split_counts(labels, stratified_split(texts, labels, PLAN))
    for label, n in sizes.items():
        for split, ratio in PLAN.ratios().items():
            expected = n * ratio
            assert abs(counts[split].get(label, 0) - expected) <= 1 + (split == "train"), (label, split)
            assert counts[split].get(label, 0) >= 1  # every class in every split


def test_duplicates_never_straddle_two_splits():
    texts, labels = make_data({"a": 60, "b": 40}, duplicates=30)
    assignment = stratified_split(texts, labels, PLAN)
    split_of: dict[str, set[str]] = {}
    for text, split in zip(texts, assignment):
        split_of.setdefault(normalise_text(text), set()).add(split)
    assert all(len(s) == 1 for s in split_of.values())
    assert sum(len(s) for s in split_of.values()) < len(texts)  # the data really had duplicates


def test_same_input_and_seed_give_the_same_split_in_any_order():
    texts, labels = make_data({"a": 50, "b": 30})
    first = stratified_split(texts, labels, PLAN)
    assert stratified_split(texts, labels, PLAN) == first
    order = list(range(len(texts)))
    random.Random(3).shuffle(order)
    shuffled = stratified_split([texts[i] for i in order], [labels[i] for i in order], PLAN)
    assert {texts[i]: s for i, s in zip(order, shuffled)} == dict(zip(texts, first))


def test_another_seed_gives_another_split():
    texts, labels = make_data({"a": 50, "b": 30})
    assert stratified_split(texts, labels, PLAN) != stratified_split(texts, labels, SplitPlan(0.8, 0.1, 0.1, 8))


@pytest.mark.parametrize("plan", [SplitPlan(0.7, 0.3, 0.0, 1), SplitPlan(1.0, 0.0, 0.0, 1)])
def test_empty_splits_get_nothing(plan):
    texts, labels = make_data({"a": 20, "b": 10})
    counts = Counter(stratified_split(texts, labels, plan))
    assert counts["test"] == 0 and (counts["validation"] > 0) == (plan.validation > 0)


def test_a_validation_split_too_thin_to_tell_models_apart_is_said_with_the_labels():
    from core.data.split import thin_validation

    counts = {"train": {"a": 80, "b": 40, "c": 10}, "validation": {"a": 25, "b": 8, "c": 3}, "test": {}}
    said = thin_validation(counts, 20)
    assert said.startswith("2 of 3 labels have fewer than 20 validation texts ('c' 3, 'b' 8)")
    assert "larger validation share" in said
    assert thin_validation(counts, 3) is None
    assert thin_validation({"train": {"a": 5}, "validation": {}}, 20) is None
    many = {"validation": {f"l{i}": i for i in range(10)}}
    assert "and 5 more" in thin_validation(many, 20)
