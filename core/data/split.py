"""Seeded, stratified, leak-free train / validation / test splits.

Rows whose texts are equal up to case and spacing form one group and always
land in the same split, so no duplicate straddles two splits. Within each
class, groups are shuffled with the seed (after sorting them by content, so
the input order does not matter) and dealt out until each split holds its
share of the class.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from core.platform.config import SplitConfig
from core.data.validate import normalise_text

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class SplitPlan:
    """The ratios and seed a split was made with, kept with the dataset version."""

    train: float
    validation: float
    test: float
    seed: int

    @classmethod
    def from_config(cls, config: SplitConfig) -> "SplitPlan":
        return cls(config.train, config.validation, config.test, config.seed)

    def ratios(self) -> dict[str, float]:
        return {"train": self.train, "validation": self.validation, "test": self.test}


def _targets(class_size: int, plan: SplitPlan) -> dict[str, int]:
    """How many rows of one class go to validation and test (train takes the rest)."""
    active = [s for s in ("validation", "test") if plan.ratios()[s] > 0]
    targets = {s: round(class_size * plan.ratios()[s]) for s in active}
    if class_size >= len(active) + 1:  # enough rows to give every split at least one
        targets = {s: max(1, n) for s, n in targets.items()}
    while sum(targets.values()) >= class_size and any(targets.values()):
        largest = max(targets, key=targets.get)
        targets[largest] -= 1
    return targets


def stratified_split(texts: Sequence[str], labels: Sequence[str], plan: SplitPlan) -> list[str]:
    """The split name of every row, stratified by label, duplicates kept together."""
    groups: dict[str, list[int]] = defaultdict(list)
    for index, text in enumerate(texts):
        groups[normalise_text(text)].append(index)
    by_class: dict[str, list[str]] = defaultdict(list)
    for key, members in groups.items():
        by_class[labels[members[0]]].append(key)

    rng = np.random.default_rng(plan.seed)
    assignment = [""] * len(texts)
    for label in sorted(by_class):
        keys = sorted(by_class[label])
        order = rng.permutation(len(keys))
        class_size = sum(len(groups[k]) for k in keys)
        targets = _targets(class_size, plan)
        filled: Counter[str] = Counter()
        for position in order:
            members = groups[keys[position]]
            split = next((s for s, n in targets.items() if filled[s] < n), "train")
            filled[split] += len(members)
            for index in members:
                assignment[index] = split
    return assignment


def split_counts(labels: Sequence[str], assignment: Sequence[str]) -> dict[str, dict[str, int]]:
    """Rows per label in each split, for charts and the saved metadata."""
    counts: dict[str, dict[str, int]] = {s: {} for s in SPLITS}
    for (split, label), n in Counter(zip(assignment, labels)).items():
        counts[split][label] = n
    return {s: dict(sorted(c.items())) for s, c in counts.items()}


def split_table(counts: dict[str, dict[str, int]]) -> pd.DataFrame:
    """Examples per label (rows) and split (columns), with a total row: the counts behind the share chart."""
    table = pd.DataFrame(counts).fillna(0).astype(int).sort_index()
    table.loc["(all labels)"] = table.sum()
    return table


def thin_validation(counts: dict[str, dict[str, int]], minimum: int) -> str | None:
    """When some label (or tag) has fewer than ``minimum`` validation texts, in words: scores on so few texts
    move by points from one draw to the next, so close models cannot be told apart (None when there are enough;
    a split without validation texts is not judged here)."""
    validation = counts.get("validation", {})
    if not validation:
        return None
    thin = sorted((n, label) for label, n in validation.items() if n < minimum)
    if not thin:
        return None
    named = ", ".join(f"'{label}' {n}" for n, label in thin[:5]) + (f" and {len(thin) - 5} more" if len(thin) > 5
                                                                    else "")
    return (f"{len(thin)} of {len(validation)} labels have fewer than {minimum} validation texts ({named}): scores "
            f"on so few texts move by points from one draw to the next, so models that differ by a little cannot "
            f"be told apart. A larger validation share (Split settings on the Data page) or more texts for those "
            f"labels would tell them apart.")
