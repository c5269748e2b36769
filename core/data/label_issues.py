"""Suspicious labels: rows whose label a model that never saw them disagrees with, found before training.

Every row is scored by a fast model trained on the other folds (out-of-fold probabilities: a row never
judges itself), and cleanlab's confident learning flags the rows whose given label is unlikely next to
what the rest of the data says. Each comes with the label the model suggests and the most similar rows
that carry that label, so a person can see why. Nothing changes until someone decides row by row
(core.data.cleaning.LabelDecision).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline

from core.models.baselines import TfidfLogRegSettings, tfidf_logreg_pipeline, tfidf_vectoriser
from core.platform.config import AppConfig

#: Progress: (folds done, folds in all).
FoldProgress = Callable[[int, int], None]


class LabelCheckError(ValueError):
    """The data cannot be checked (too few rows or labels), and why."""


@dataclass(frozen=True)
class LabelIssue:
    """One row whose label looks wrong."""

    line: int
    text: str
    label: str
    suggested: str
    #: The out-of-fold probability of the given label (low: the rest of the data disagrees with it) …
    label_score: float
    #: … and of the suggested one.
    suggested_score: float
    #: The rows most like this one that carry the suggested label (why the model suggests it).
    similar: tuple[str, ...]
    #: The split the row sits in, when a saved version is checked (None for a file not yet split).
    split: str | None = None


@dataclass(frozen=True)
class LabelCheck:
    """What a check found, ranked most suspicious first."""

    issues: list[LabelIssue]
    rows: int
    folds: int
    seconds: float
    #: Per row (in the checked frame's order): cleanlab's label quality, 0 (surely wrong) … 1.
    quality: np.ndarray


def _folds(label_ids: np.ndarray, wanted: int) -> int:
    """As many folds as asked, but no more than the smallest label has rows (each fold needs one of each)."""
    smallest = int(np.bincount(label_ids).min())
    if smallest < 2:
        raise LabelCheckError("every label needs at least 2 rows to be checked (one to learn from, one to judge)")
    return max(2, min(wanted, smallest))


def _judge(seed: int) -> Pipeline:
    """The TF-IDF + logistic regression baseline's pipeline, without its balanced sample weights: on labels
    with errors in them the weighted fit does not converge (CLINC150 with 5 % flipped: it ran to the 300-pass cap
    of the time, 29 s a fold, against 31 passes and 3 s unweighted), and weighting serves macro-F1 in training,
    not this check."""
    return tfidf_logreg_pipeline(TfidfLogRegSettings(), seed)


def out_of_fold_scores(texts: list[str], label_ids: np.ndarray, n_labels: int, folds: int, seed: int,
                       progress: FoldProgress | None = None) -> np.ndarray:
    """Each row's probabilities from TF-IDF + logistic regression trained on the other folds."""
    scores = np.zeros((len(texts), n_labels))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for done, (train, held_out) in enumerate(splitter.split(texts, label_ids), start=1):
        judge = _judge(seed).fit([texts[i] for i in train], label_ids[train])
        scores[np.ix_(held_out, judge.classes_)] = judge.predict_proba([texts[i] for i in held_out])
        if progress is not None:
            progress(done, folds)
    return scores


def _similar(vectors, texts: list[str], label_ids: np.ndarray, row: int, label: int, count: int) -> tuple[str, ...]:
    """The ``count`` rows labelled ``label`` whose TF-IDF vectors (``vectors``, one row per text, unit length)
    are closest to row ``row``'s."""
    candidates = np.flatnonzero((label_ids == label) & (np.arange(len(texts)) != row))
    if not len(candidates) or not count:
        return ()
    closeness = (vectors[candidates] @ vectors[row].T).toarray().ravel()
    return tuple(texts[candidates[i]] for i in np.argsort(-closeness, kind="stable")[:count])


def find_suspicious_labels(frame: pd.DataFrame, config: AppConfig, progress: FoldProgress | None = None) -> LabelCheck:
    """Check ``line``/``text``/``label`` rows (and ``split``, for a saved version); the issues are cleanlab's, ranked by how unlikely the given
    label is (self-confidence), at most ``labels.max_issues``."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    started = time.monotonic()
    names = sorted(frame["label"].unique())
    if len(names) < 2:
        raise LabelCheckError("labels can only be checked against each other: there is one label")
    texts = frame["text"].tolist()
    label_ids = np.array([names.index(label) for label in frame["label"]])
    settings = config.labels
    folds = _folds(label_ids, settings.folds)
    scores = out_of_fold_scores(texts, label_ids, len(names), folds, config.training.seed, progress)
    quality = get_label_quality_scores(label_ids, scores, method="self_confidence")
    # n_jobs=1: by default cleanlab forks a process pool, and a fork from the web server's threads can copy a
    # lock another thread holds and hang the page (the work per label is tiny anyway)
    flagged = find_label_issues(label_ids, scores, return_indices_ranked_by="self_confidence", n_jobs=1)
    lines = frame["line"].tolist()
    splits = frame["split"].tolist() if "split" in frame else [None] * len(frame)
    vectors = tfidf_vectoriser().fit_transform(texts) if settings.similar_examples else None
    issues = []
    for row in flagged[:settings.max_issues]:
        suggested = int(np.argmax(scores[row]))
        issues.append(LabelIssue(int(lines[row]), texts[row], names[label_ids[row]], names[suggested],
                                 float(scores[row, label_ids[row]]), float(scores[row, suggested]),
                                 _similar(vectors, texts, label_ids, row, suggested, settings.similar_examples),
                                 splits[row]))
    return LabelCheck(issues, len(texts), folds, time.monotonic() - started, quality)


@dataclass(frozen=True)
class NearCopies:
    """Rows that say the same thing in other words (close in the sentence-embedding space): harmless when
    their labels agree, a labelling question when they do not, and a leak when they straddle splits."""

    lines: tuple[int, ...]
    texts: tuple[str, ...]
    labels: tuple[str, ...]

    @property
    def conflicting(self) -> bool:
        return len(set(self.labels)) > 1


@dataclass(frozen=True)
class Outlier:
    """A row unlike the rest of the data (far from its nearest neighbours): off-topic, garbled or another
    language, worth a look before a model learns from it."""

    line: int
    text: str
    label: str
    #: cleanlab's outlier score: near 0 for the most unusual rows.
    score: float


@dataclass(frozen=True)
class EmbeddingCheck:
    """What cleanlab's Datalab found on the rows' sentence embeddings."""

    near_copies: list[NearCopies]
    outliers: list[Outlier]
    rows: int
    seconds: float


#: Datalab compares each row with this many nearest neighbours (it needs more rows than that).
NEIGHBOURS = 10
#: Progress: (rows embedded, rows in all).
RowProgress = Callable[[int, int], None]


def _groups(flagged: np.ndarray, sets: list) -> list[list[int]]:
    """Flagged rows joined with their near-duplicate sets into groups (connected components), each sorted."""
    parent: dict[int, int] = {}

    def root(row: int) -> int:
        while parent.setdefault(row, row) != row:
            row = parent[row]
        return row

    for row in flagged:
        for other in sets[row]:
            parent[root(int(other))] = root(int(row))
    members: dict[int, list[int]] = {}
    for row in parent:
        members.setdefault(root(row), []).append(row)
    return [sorted(group) for group in members.values() if len(group) > 1]


def find_near_copies_and_outliers(frame: pd.DataFrame, config: AppConfig,
                                  progress: RowProgress | None = None) -> EmbeddingCheck:
    """Near-copies (conflicting labels first, then the largest groups) and outliers (most unusual first) among
    ``line``/``text``/``label`` rows, found by cleanlab's Datalab on the configured model's mean-pooled sentence
    embeddings; at most ``labels.max_issues`` of each."""
    from cleanlab import Datalab

    from core.models.embeddings import shared_encoder

    started = time.monotonic()
    texts, labels, lines = frame["text"].tolist(), frame["label"].tolist(), frame["line"].tolist()
    if len(texts) <= NEIGHBOURS:
        raise LabelCheckError(f"near-copies and outliers are judged against each row's {NEIGHBOURS} nearest "
                              f"neighbours: at least {NEIGHBOURS + 1} rows are needed")
    encoder = shared_encoder(config.model.name, config.model.max_length)
    vectors = encoder.encode(texts, None if progress is None else lambda done: progress(done, len(texts)))
    names = sorted(set(labels))
    lab = Datalab(data={"label": [names.index(label) for label in labels]}, label_name="label", verbosity=0)
    lab.find_issues(features=vectors, issue_types={
        "near_duplicate": {"threshold": config.labels.near_copy_threshold}, "outlier": {}})
    copies = lab.get_issues("near_duplicate")
    groups = _groups(np.flatnonzero(copies["is_near_duplicate_issue"].to_numpy()),
                     copies["near_duplicate_sets"].tolist())
    near = [NearCopies(tuple(int(lines[i]) for i in group), tuple(texts[i] for i in group),
                       tuple(labels[i] for i in group)) for group in groups]
    near.sort(key=lambda group: (not group.conflicting, -len(group.lines), group.lines[0]))
    unusual = lab.get_issues("outlier")
    flagged = np.flatnonzero(unusual["is_outlier_issue"].to_numpy())
    scores = unusual["outlier_score"].to_numpy()
    outliers = [Outlier(int(lines[i]), texts[i], labels[i], float(scores[i]))
                for i in flagged[np.argsort(scores[flagged], kind="stable")]]
    limit = config.labels.max_issues
    return EmbeddingCheck(near[:limit], outliers[:limit], len(texts), time.monotonic() - started)
