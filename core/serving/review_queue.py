"""The review queue: predictions a person should label, ranked to teach the next model the most.

Classifying queues every prediction below the review threshold and a small random sample of confident ones
(a confident mistake is found only by looking). The queue is shown low margin first (the model was torn
between two labels), and a text close to the one just shown in the embedding space (the configured model's
sentence embeddings) waits until other texts have had their turn, so nobody labels ten near-copies in a row.
A label given here becomes a correction in the feedback review, and from there a new dataset version.
Queued texts are kept ``review.keep_text_days``, then deleted.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable

import numpy as np
from sqlalchemy import insert, select, update

from core.accounts.auth import Actor
from core.platform.config import ModelConfig, ReviewConfig
from core.serving.feedback import insert_feedback
from core.models.predict import Prediction
from core.platform.store import Store, as_utc, review_queue, utc_now

BELOW_THRESHOLD, CONFIDENT_SAMPLE = "below_threshold", "confident_sample"
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class QueuedItem:
    id: int
    time: datetime
    run_id: str
    text: str
    predicted: str
    score: float
    margin: float
    reason: str

    @classmethod
    def from_row(cls, row: dict) -> "QueuedItem":
        return cls(row["id"], as_utc(row["time"]), row["run_id"], row["text"], row["predicted"], row["score"],
                   row["margin"], row["reason"])


def margin(prediction: Prediction) -> float:
    """The top score's lead over the second (1.0 with one label)."""
    top = sorted(prediction.scores.values(), reverse=True)
    return float(top[0] - top[1]) if len(top) > 1 else 1.0


def to_queue(results: Iterable[tuple[Any, Prediction]], settings: ReviewConfig,
             draw: random.Random | None = None) -> list[tuple[str, Prediction, str]]:
    """Which scored texts go to the queue, and why: every one flagged for review, and a random share of the
    confident ones."""
    draw = draw or random.Random()
    chosen = []
    for text, prediction in results:
        if prediction.status != "ok" or not isinstance(text, str):
            continue
        if prediction.needs_review:
            chosen.append((text, prediction, BELOW_THRESHOLD))
        elif draw.random() < settings.confident_sample_rate:
            chosen.append((text, prediction, CONFIDENT_SAMPLE))
    return chosen


#: Queueing lets texts past their days expire at most this often per process (and the review page always does):
#: a text outlives its last day by minutes at most, and a busy API does not pay two updates on every call.
EXPIRE_EVERY_S = 600.0
_last_expiry: dict[str, float] = {}


def _expiry_due(store: Store) -> bool:
    """Whether this process last let old texts expire from this database more than EXPIRE_EVERY_S ago."""
    key, now = str(store.engine.url), time.monotonic()
    if now - _last_expiry.get(key, -EXPIRE_EVERY_S) < EXPIRE_EVERY_S:
        return False
    _last_expiry[key] = now
    return True


def enqueue(store: Store, run_id: str, username: str | None, chosen: list[tuple[str, Prediction, str]],
            settings: ReviewConfig) -> int:
    """Add the chosen predictions (with their texts) to the queue, and now and then let texts past their time
    expire; how many were added."""
    now = utc_now()
    rows = [{"time": now, "run_id": run_id, "username": username, "text": text, "predicted": p.label,
             "score": p.score, "margin": margin(p), "reason": reason, "status": "open"} for text, p, reason in chosen]
    if rows:
        with store.appending() as connection:
            connection.execute(insert(review_queue), rows)
        if _expiry_due(store):
            expire_old(store, settings, now)
    return len(rows)


def _expire(connection, cutoff: datetime) -> int:
    """Texts queued before ``cutoff`` are deleted; an open item closes as expired, a labelled one stays labelled."""
    old = (review_queue.c.time < cutoff) & review_queue.c.text.is_not(None)
    closed = connection.execute(update(review_queue).where(old, review_queue.c.status == "open")
                                .values(text=None, status="expired")).rowcount
    return int(closed) + int(connection.execute(update(review_queue).where(old).values(text=None)).rowcount)


def expire_old(store: Store, settings: ReviewConfig, now: datetime | None = None) -> int:
    """Delete the text of items older than ``keep_text_days``, closing the open ones; how many texts went.
    A read decides first, so the write lock is taken only when something is due."""
    cutoff = (now or utc_now()) - timedelta(days=settings.keep_text_days)
    due = store.rows(select(review_queue.c.id).where(review_queue.c.time < cutoff,
                                                     review_queue.c.text.is_not(None)).limit(1))
    if not due:
        return 0
    with store.writing() as connection:
        return _expire(connection, cutoff)


def word_similarity(texts: list[str]) -> np.ndarray:
    """Cosine similarity of the texts' TF-IDF vectors (zero for texts without a word the vectoriser keeps)."""
    from core.models.baselines import tfidf_vectoriser

    try:
        vectors = tfidf_vectoriser().fit_transform(texts)
    except ValueError:  # no text has a word the vectoriser keeps ("??", emoji): nothing to compare
        return np.eye(len(texts))
    return (vectors @ vectors.T).toarray()


def embedding_similarity(texts: list[str], model: ModelConfig) -> np.ndarray:
    """Cosine similarity of the texts' sentence embeddings (the configured model, mean pooled); by words when
    that model cannot be loaded here, so the queue is still shown."""
    from core.models.embeddings import EMBEDDINGS

    try:
        vectors = EMBEDDINGS.embed(texts, model.name, model.max_length)
    except (OSError, ValueError) as error:
        logger.warning("review queue: spreading near-copies by their words, %s cannot be loaded (%s)",
                       model.name, error)
        return word_similarity(texts)
    return vectors @ vectors.T


def spread(items: list[QueuedItem], close: np.ndarray) -> list[QueuedItem]:
    """Keep the order, but move a text close (``close[i, j]``) to the one chosen just before it behind the
    others."""
    waiting, ordered = list(range(len(items))), []
    while waiting:
        pick = waiting[0]
        if ordered:
            pick = next((i for i in waiting if not close[i, ordered[-1]]), waiting[0])
        waiting.remove(pick)
        ordered.append(pick)
    return [items[i] for i in ordered]


def ranked(store: Store, settings: ReviewConfig, model: ModelConfig, limit: int = 200) -> list[QueuedItem]:
    """Open items, the most uncertain first (smallest margin), near-copies (by ``settings.spread_by``) spread
    apart."""
    rows = store.rows(select(review_queue).where(review_queue.c.status == "open", review_queue.c.text.is_not(None))
                      .order_by(review_queue.c.margin, review_queue.c.id).limit(limit))
    items = [QueuedItem.from_row(row) for row in rows]
    if len(items) < 3:
        return items
    texts = [item.text for item in items]
    similarity = embedding_similarity(texts, model) if settings.spread_by == "embeddings" else word_similarity(texts)
    return spread(items, similarity >= settings.near_duplicate_similarity)


def item(store: Store, item_id: int) -> QueuedItem | None:
    rows = store.rows(select(review_queue).where(review_queue.c.id == item_id))
    return QueuedItem.from_row(rows[0]) if rows and rows[0]["text"] is not None else None


def label_as_correction(store: Store, queued: QueuedItem, label: str, actor: Actor, session_id: str | None) -> int | None:
    """In one transaction: close the open item with its label and add the correction it becomes; the
    correction's id, or None when someone labelled it first (or it expired) — so two people labelling at once
    make one correction, and a failure leaves neither half."""
    with store.writing() as connection:
        claimed = connection.execute(update(review_queue).where(review_queue.c.id == queued.id,
                                                                review_queue.c.status == "open")
                                     .values(status="labelled", label=label, labelled_by=actor.username,
                                             labelled_at=utc_now())).rowcount
        if not claimed:
            return None
        correction = insert_feedback(connection, actor, queued.run_id, queued.text, queued.predicted, queued.score,
                                     label, session_id)
        connection.execute(update(review_queue).where(review_queue.c.id == queued.id).values(feedback_id=correction))
    return correction


def labelled_texts(store: Store, other_than: str) -> list[tuple[str, str]]:
    """(text, label) of the labelled items whose prediction came from a run other than ``other_than`` (and whose
    text has not expired)."""
    rows = store.rows(select(review_queue.c.text, review_queue.c.label).where(
        review_queue.c.status == "labelled", review_queue.c.run_id != other_than, review_queue.c.text.is_not(None)))
    return [(row["text"], row["label"]) for row in rows]


def queue_figures(store: Store) -> dict[str, Any]:
    """Open and labelled items, and how often the labellers agreed with the model."""
    rows = store.rows(select(review_queue.c.status, review_queue.c.predicted, review_queue.c.label,
                             review_queue.c.reason))
    labelled = [row for row in rows if row["status"] == "labelled"]
    agreeing = sum(row["label"] == row["predicted"] for row in labelled)
    return {"open": sum(row["status"] == "open" for row in rows), "labelled": len(labelled), "agreeing": agreeing,
            "agreement": agreeing / len(labelled) if labelled else None,
            "confident_mistakes": sum(row["reason"] == CONFIDENT_SAMPLE and row["label"] != row["predicted"]
                                      for row in labelled)}
