"""How much of a fine-tuned run's validation score may be the luck of its best epoch.

The transformer keeps the epoch that scored best on the validation split, so its validation score is the best of
several draws on the same texts: optimistic by about how far that epoch stands above the epochs beside it. A
peak on a flat curve is a score to trust; a lone spike is not, and a lead no larger than the spike's height is
not a clear lead (core.experiments.comparison).
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import fmean
from typing import Any


@dataclass(frozen=True)
class EpochPeak:
    """The best epoch's validation score and the mean score of the epochs evaluated just before and after it (its
    own score when it is the last evaluated: a curve still rising at its end says nothing of a spike)."""

    epoch: float
    score: float
    beside: float

    @property
    def excess(self) -> float:
        """How far the kept epoch stands above its neighbours (about 0 on a flat curve or one still rising)."""
        return max(0.0, self.score - self.beside)


def epoch_peak(history: list[dict[str, Any]], metric: str = "macro_f1") -> EpochPeak | None:
    """The peak of a run's validation curve (its ``history``, one point per evaluation) for ``metric``; None with
    fewer than two evaluations (nothing to compare the kept epoch with)."""
    key = f"validation_{metric}"
    by_epoch = {round(float(point["epoch"]), 3): float(point[key]) for point in history
                if point.get(key) is not None and point.get("epoch") is not None}
    curve = sorted(by_epoch.items())
    if len(curve) < 2:
        return None
    best = max(range(len(curve)), key=lambda i: (curve[i][1], -i))  # the first best, as the Trainer keeps it
    if best == len(curve) - 1:
        return EpochPeak(curve[best][0], curve[best][1], curve[best][1])
    beside = [curve[i][1] for i in (best - 1, best + 1) if 0 <= i < len(curve)]
    return EpochPeak(curve[best][0], curve[best][1], fmean(beside))
