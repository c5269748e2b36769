"""Which texts to ask a person about next: the ones whose labels teach the model most.

A label teaches most where the model is torn (the smallest margin between its two best labels), but the most
uncertain texts of a batch are often near-copies of each other, and ten labels on one confusion teach what one
would. So a batch is chosen in two steps (cluster-margin sampling, Citovsky et al., 2021): a pool of the
``pool_factor`` × ``batch`` most uncertain texts, grouped into ``batch`` clusters by their sentence embeddings,
and the most uncertain text of each cluster. The batch is shown most uncertain first.
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans


def margins(probabilities: np.ndarray) -> np.ndarray:
    """Each row's lead of its best label over the second (1.0 with one label): small is uncertain."""
    if probabilities.shape[1] < 2:
        return np.ones(len(probabilities))
    top = np.sort(probabilities, axis=1)
    return top[:, -1] - top[:, -2]


def propose(probabilities: np.ndarray, vectors: np.ndarray, batch: int, pool_factor: int = 5,
            seed: int = 0) -> list[int]:
    """The rows to label next: uncertain ones, each from a different region of the embedding space."""
    if len(probabilities) != len(vectors):
        raise ValueError(f"{len(probabilities)} rows of scores but {len(vectors)} of embeddings")
    if batch < 1 or pool_factor < 1:
        raise ValueError("batch and pool_factor must be at least 1")
    uncertainty = margins(probabilities)
    order = np.argsort(uncertainty, kind="stable")
    pool = order[:batch * pool_factor]
    if len(pool) <= batch:
        return [int(i) for i in pool]
    distinct = len(np.unique(np.round(vectors[pool], 6), axis=0))
    clusters = KMeans(n_clusters=min(batch, distinct), n_init=3, random_state=seed).fit_predict(vectors[pool])
    chosen = [int(pool[np.flatnonzero(clusters == c)[0]]) for c in np.unique(clusters)]  # pool is most uncertain first
    if len(chosen) < batch:  # identical texts made fewer clusters: the next most uncertain fill the batch
        chosen += [int(i) for i in pool if int(i) not in chosen][:batch - len(chosen)]
    return sorted(chosen, key=lambda i: (uncertainty[i], i))
