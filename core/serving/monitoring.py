"""How the published model behaves in use: volume, label mix against training, uncertainty, agreement."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable

import pandas as pd
from sqlalchemy import insert, select

from core.accounts.auth import Actor
from core.models.predict import TAG_JOIN, Prediction
from core.platform.store import Store, feedback, predictions, utc_now

PREDICTION_COLUMNS = ["time", "username", "run_id", "label", "score", "needs_review", "status", "source"]
FEEDBACK_COLUMNS = ["time", "username", "run_id", "is_correct"]


def record_predictions(store: Store, actor: Actor, session_id: str | None, run_id: str,
                       results: Iterable[tuple[Any, Prediction]], source: str, keep_text: bool) -> int:
    """Log served predictions (text only when ``keep_text``); returns how many rows were written."""
    now = utc_now()
    rows = [{"time": now, "username": actor.username, "session_id": session_id, "run_id": run_id,
             "label": p.label, "score": p.score, "needs_review": p.needs_review, "status": p.status, "source": source,
             "text": text if keep_text and isinstance(text, str) else None} for text, p in results]
    if rows:
        with store.appending() as connection:
            connection.execute(insert(predictions), rows)
    return len(rows)


def _periods(times: pd.Series, freq: str) -> pd.Series:
    """The start of each time's period (hour ``h`` or day ``D``), as naive UTC for plotting."""
    return times.dt.tz_convert(None).dt.to_period(freq).dt.start_time


def prediction_log(store: Store, since: datetime | None = None) -> pd.DataFrame:
    """Served predictions (without texts), oldest first."""
    statement = select(*[predictions.c[name] for name in PREDICTION_COLUMNS]).order_by(predictions.c.id)
    if since is not None:
        statement = statement.where(predictions.c.time >= since)
    frame = pd.DataFrame(store.rows(statement), columns=PREDICTION_COLUMNS)
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    return frame


def own_predictions(store: Store, username: str, limit: int = 10) -> pd.DataFrame:
    """One person's latest scored predictions, newest first (the text only where it is kept)."""
    columns = ["time", "run_id", "label", "score", "needs_review", "source", "text"]
    statement = (select(*[predictions.c[name] for name in columns])
                 .where(predictions.c.username == username, predictions.c.status == "ok")
                 .order_by(predictions.c.id.desc()).limit(limit))
    frame = pd.DataFrame(store.rows(statement), columns=columns)
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    return frame


#: A log spanning at most this many days is shown per hour; a longer one per day.
HOURLY_UP_TO_DAYS = 2


def default_period(log: pd.DataFrame) -> str:
    """Hours for a short log (one day of data in day bins is a single, unreadable point), else days."""
    if log.empty:
        return "D"
    span = log["time"].max() - log["time"].min()
    return "h" if span <= pd.Timedelta(days=HOURLY_UP_TO_DAYS) else "D"


def with_model_names(frame: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    """Adds a ``model`` column, the run's readable name (its id when unknown), for legends and tables."""
    return frame.assign(model=[names.get(run_id, run_id) for run_id in frame["run_id"]])


def volume_over_time(log: pd.DataFrame, freq: str = "D") -> pd.DataFrame:
    """Predictions per period and model run."""
    if log.empty:
        return pd.DataFrame(columns=["period", "run_id", "predictions"])
    scored = log.assign(period=_periods(log["time"], freq))
    return scored.groupby(["period", "run_id"]).size().rename("predictions").reset_index()


def review_share_over_time(log: pd.DataFrame, freq: str = "D") -> pd.DataFrame:
    """Share of scored predictions below the review threshold, per period."""
    scored = log[log["status"] == "ok"]
    if scored.empty:
        return pd.DataFrame(columns=["period", "review_share", "predictions"])
    scored = scored.assign(period=_periods(scored["time"], freq))
    grouped = scored.groupby("period")["needs_review"]
    return pd.DataFrame({"review_share": grouped.mean().astype(float), "predictions": grouped.size()}).reset_index()


NO_TAG = "(no tag)"


def _tag_lists(labels: pd.Series) -> pd.Series:
    """A tagger's predicted labels (tags joined by "; ") as lists of tags (["(no tag)"] for none)."""
    return labels.map(lambda label: [t for t in label.split(TAG_JOIN) if t] or [NO_TAG])


def given_tags(labels: pd.Series) -> pd.Series:
    """The tags given, one row per tag."""
    return _tag_lists(labels).explode()


def label_drift(log: pd.DataFrame, training_counts: dict[str, int],
                tags: bool = False) -> tuple[pd.DataFrame, float]:
    """Each label's share among recent predictions and in the training data, and their total variation distance;
    for a tagger (``tags``), each tag's share of the tags given.

    The distance is half the sum of absolute share differences: 0 means the same mix, 1 means no overlap.
    """
    given = log[log["status"] == "ok"]["label"]
    recent = (given_tags(given) if tags else given).value_counts()
    labels = sorted(set(training_counts) | set(recent.index))
    total_recent, total_training = max(int(recent.sum()), 1), max(sum(training_counts.values()), 1)
    frame = pd.DataFrame({
        "label": labels,
        "recent predictions": [int(recent.get(label, 0)) / total_recent for label in labels],
        "training data": [training_counts.get(label, 0) / total_training for label in labels],
    })
    distance = float((frame["recent predictions"] - frame["training data"]).abs().sum() / 2) if len(recent) else 0.0
    return frame, distance


def tag_rates_over_time(log: pd.DataFrame, freq: str = "D") -> pd.DataFrame:
    """For a tagger's predictions: the share of texts given each tag, per period."""
    scored = log[log["status"] == "ok"]
    if scored.empty:
        return pd.DataFrame(columns=["period", "tag", "rate", "texts"])
    scored = scored.assign(period=_periods(scored["time"], freq))
    texts = scored.groupby("period").size().rename("texts")
    per_tag = scored.assign(tag=_tag_lists(scored["label"])).explode("tag").groupby(["period", "tag"]).size()
    per_tag = per_tag.rename("given")
    rates = per_tag.reset_index().merge(texts.reset_index(), on="period")
    return rates.assign(rate=rates["given"] / rates["texts"])[["period", "tag", "rate", "texts"]]


def model_usage(log: pd.DataFrame) -> pd.DataFrame:
    """Predictions and distinct users per model run."""
    if log.empty:
        return pd.DataFrame(columns=["run_id", "predictions", "users"])
    grouped = log.groupby("run_id")
    return pd.DataFrame({"predictions": grouped.size(), "users": grouped["username"].nunique()}).reset_index()


def feedback_log(store: Store) -> pd.DataFrame:
    """Every verdict users gave on a prediction (right or wrong), oldest first."""
    statement = select(*[feedback.c[name] for name in FEEDBACK_COLUMNS]).order_by(feedback.c.id)
    frame = pd.DataFrame(store.rows(statement), columns=FEEDBACK_COLUMNS)
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    frame["is_correct"] = frame["is_correct"].astype(bool)
    return frame


def feedback_agreement(verdicts: pd.DataFrame) -> pd.DataFrame:
    """Per run: how much feedback came back and the share saying the prediction was right."""
    if verdicts.empty:
        return pd.DataFrame(columns=["run_id", "feedback", "agreement"])
    grouped = verdicts.groupby("run_id")["is_correct"]
    return pd.DataFrame({"feedback": grouped.size(), "agreement": grouped.mean().astype(float)}).reset_index()


def agreement_over_time(verdicts: pd.DataFrame, freq: str = "D") -> pd.DataFrame:
    """Per period: feedback received and the share agreeing with the model."""
    if verdicts.empty:
        return pd.DataFrame(columns=["period", "agreement", "feedback"])
    grouped = verdicts.assign(period=_periods(verdicts["time"], freq)).groupby("period")["is_correct"]
    return pd.DataFrame({"agreement": grouped.mean().astype(float), "feedback": grouped.size()}).reset_index()
