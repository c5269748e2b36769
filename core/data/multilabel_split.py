"""Seeded, leak-free train / validation / test splits of multi-label data by iterative stratification.

A random split of multi-label data leaves rare tags out of a split or crowds them into one; iterative
stratification (Sechidis et al., 2011, as implemented by the ``iterative-stratification`` package) deals the
rows out tag by tag, rarest first, so that every tag's positives are shared out close to the split ratios.
As in the single-label split, rows whose texts are equal up to case and spacing form one group that lands in one
split (the group carries every tag of its rows), and groups are taken in content order, so the result depends
on the seed and the data, never on the row order.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Sequence

import numpy as np

from core.data.split import SPLITS, SplitPlan
from core.data.validate import normalise_text
from core.models.multilabel import TAG_MATRIX_DTYPE


def _stratified_halves(tag_matrix: np.ndarray, held_share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of the kept and the held-out part (``held_share`` of the rows), stratified by tag."""
    from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

    splitter = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=held_share, random_state=seed)
    kept, held = next(splitter.split(np.zeros(len(tag_matrix)), tag_matrix))
    return kept, held


def multilabel_split(texts: Sequence[str], tags: Sequence[Sequence[str]], plan: SplitPlan) -> list[str]:
    """The split name of every row, stratified by tag, duplicates kept together."""
    groups: dict[str, list[int]] = defaultdict(list)
    for index, text in enumerate(texts):
        groups[normalise_text(text)].append(index)
    keys = sorted(groups)
    names = sorted({tag for row in tags for tag in row})
    column = {name: j for j, name in enumerate(names)}
    # one column per tag, and one for "no tag", so that untagged rows are shared out too
    matrix = np.zeros((len(keys), len(names) + 1), dtype=TAG_MATRIX_DTYPE)
    for g, key in enumerate(keys):
        for index in groups[key]:
            for tag in tags[index]:
                matrix[g, column[tag]] = 1
        matrix[g, -1] = not matrix[g, :-1].any()
    split_of_group = np.array(["train"] * len(keys), dtype=object)
    held = plan.validation + plan.test
    if held > 0 and len(keys) > 2:
        _, rest = _stratified_halves(matrix, held, plan.seed)
        if plan.validation > 0 and plan.test > 0 and len(rest) > 1:
            validation, test = _stratified_halves(matrix[rest], plan.test / held, plan.seed)
            split_of_group[rest[validation]], split_of_group[rest[test]] = "validation", "test"
        else:
            split_of_group[rest] = "validation" if plan.validation > 0 else "test"
    assignment = [""] * len(texts)
    for g, key in enumerate(keys):
        for index in groups[key]:
            assignment[index] = split_of_group[g]
    return assignment


def tag_split_counts(tags: Sequence[Sequence[str]], assignment: Sequence[str]) -> dict[str, dict[str, int]]:
    """Positives per tag in each split (the split preview and the saved metadata), plus texts with no tag."""
    counts: dict[str, dict[str, int]] = {split: defaultdict(int) for split in SPLITS}
    for row, split in zip(tags, assignment):
        for tag in row or ("(no tag)",):
            counts[split][tag] += 1
    return {split: dict(sorted(c.items())) for split, c in counts.items()}
