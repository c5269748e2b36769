"""Suspicious tags: texts whose tag set the rest of the data disagrees with, found before training.

Each text's tags are scored by one-vs-rest TF-IDF + logistic regression trained on the other folds (iterative
stratification, so every fold holds each tag), and cleanlab's multi-label confident learning flags the texts whose
given tags are unlikely, ranked by self-confidence. Each flagged text comes with the tag set the folds suggest
(each tag scoring at least 0.5, at least the best one) and what that changes: the tags it would add and drop.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from core.data.label_issues import LabelCheckError
from core.models.baselines import TfidfLogRegSettings, tfidf_logreg_pipeline
from core.models.multilabel import indicator, one_vs_rest
from core.platform.config import AppConfig

#: A tag is suggested for a text when its out-of-fold score reaches this.
SUGGEST_AT = 0.5

FoldProgress = Callable[[int, int], None]


@dataclass(frozen=True)
class TagIssue:
    """One text whose tags look wrong, and what the other texts suggest instead."""

    line: int
    text: str
    tags: tuple[str, ...]
    suggested: tuple[str, ...]
    quality: float
    split: str | None = None

    @property
    def added(self) -> tuple[str, ...]:
        return tuple(t for t in self.suggested if t not in self.tags)

    @property
    def dropped(self) -> tuple[str, ...]:
        return tuple(t for t in self.tags if t not in self.suggested)


@dataclass
class TagCheck:
    issues: list[TagIssue]
    rows: int
    folds: int
    seconds: float


def out_of_fold_tag_scores(texts: list[str], truth: np.ndarray, folds: int, seed: int,
                           progress: FoldProgress | None = None) -> np.ndarray:
    """Each text's tag scores from one-vs-rest TF-IDF + LR trained on the other folds."""
    from iterstrat.ml_stratifiers import MultilabelStratifiedKFold

    scores = np.zeros(truth.shape, dtype=float)
    splitter = MultilabelStratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for done, (train, held_out) in enumerate(splitter.split(np.zeros(len(texts)), truth), start=1):
        judge = tfidf_logreg_pipeline(TfidfLogRegSettings(), seed)
        judge.steps[-1] = ("clf", one_vs_rest(judge.steps[-1][1]))
        judge.fit([texts[i] for i in train], truth[train])
        scores[held_out] = judge.predict_proba([texts[i] for i in held_out])
        if progress is not None:
            progress(done, folds)
    return scores


def find_suspicious_tags(frame: pd.DataFrame, config: AppConfig, progress: FoldProgress | None = None) -> TagCheck:
    """Check ``line``/``text``/``tags`` rows (and ``split``, for a saved version); at most ``labels.max_issues``."""
    from cleanlab.filter import find_label_issues

    started = time.monotonic()
    names = sorted({tag for row in frame["tags"] for tag in row})
    if len(names) < 2:
        raise LabelCheckError("tags can only be checked against each other: there is one tag")
    ids = {name: i for i, name in enumerate(names)}
    tag_ids = [[ids[t] for t in row] for row in frame["tags"]]
    truth = indicator(tag_ids, len(names))
    folds = max(2, min(config.labels.folds, int(truth.sum(axis=0).min())))
    texts = frame["text"].tolist()
    scores = out_of_fold_tag_scores(texts, truth, folds, config.training.seed, progress)
    # one process: a fork from the web server's threads can hang it (see core.data.label_issues)
    flagged = find_label_issues(tag_ids, scores, multi_label=True, return_indices_ranked_by="self_confidence",
                                n_jobs=1)
    from cleanlab.multilabel_classification import get_label_quality_scores

    quality = get_label_quality_scores(tag_ids, scores)
    lines, splits = frame["line"].tolist(), frame["split"].tolist() if "split" in frame else [None] * len(frame)
    issues = []
    for row in flagged[:config.labels.max_issues]:
        given = np.flatnonzero(scores[row] >= SUGGEST_AT)
        suggested = given if len(given) else [int(np.argmax(scores[row]))]
        issues.append(TagIssue(int(lines[row]), texts[row], tuple(frame["tags"].iloc[row]),
                               tuple(names[j] for j in sorted(suggested)), float(quality[row]), splits[row]))
    return TagCheck(issues, len(texts), folds, time.monotonic() - started)


def apply_tag_decisions(rows: pd.DataFrame, relabel: Sequence[TagIssue], drop: Sequence[int]) -> pd.DataFrame:
    """The rows with the chosen texts given their suggested tags and the lines in ``drop`` left out."""
    suggested = {issue.line: issue.suggested for issue in relabel}
    kept = rows[~rows["line"].isin(set(drop))].copy()
    kept["tags"] = [suggested.get(line, tags) for line, tags in zip(kept["line"], kept["tags"])]
    return kept.reset_index(drop=True)
