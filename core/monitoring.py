"""How the published model behaves in use: volume, label mix against training, uncertainty, agreement."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
from sqlalchemy import select

from core.store import Store, feedback, predictions

PREDICTION_COLUMNS = ["time", "username", "run_id", "label", "score", "needs_review", "status", "source"]


def prediction_log(store: Store, since: datetime | None = None) -> pd.DataFrame:
    """Served predictions (without texts), oldest first."""
    statement = select(*[predictions.c[name] for name in PREDICTION_COLUMNS]).order_by(predictions.c.id)
    if since is not None:
        statement = statement.where(predictions.c.time >= since)
    frame = pd.DataFrame(store.rows(statement), columns=PREDICTION_COLUMNS)
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    return frame


def volume_over_time(log: pd.DataFrame, freq: str = "D") -> pd.DataFrame:
    """Predictions per period and model run."""
    if log.empty:
        return pd.DataFrame(columns=["period", "run_id", "predictions"])
    scored = log.assign(period=log["time"].dt.tz_convert(None).dt.to_period(freq).dt.start_time)
    return scored.groupby(["period", "run_id"]).size().rename("predictions").reset_index()


def review_share_over_time(log: pd.DataFrame, freq: str = "D") -> pd.DataFrame:
    """Share of scored predictions below the review threshold, per period."""
    scored = log[log["status"] == "ok"]
    if scored.empty:
        return pd.DataFrame(columns=["period", "review_share", "predictions"])
    scored = scored.assign(period=scored["time"].dt.tz_convert(None).dt.to_period(freq).dt.start_time)
    grouped = scored.groupby("period")["needs_review"]
    return pd.DataFrame({"review_share": grouped.mean().astype(float), "predictions": grouped.size()}).reset_index()


def label_drift(log: pd.DataFrame, training_counts: dict[str, int]) -> tuple[pd.DataFrame, float]:
    """Each label's share among recent predictions and in the training data, and their total variation distance.

    The distance is half the sum of absolute share differences: 0 means the same mix, 1 means no overlap.
    """
    recent = log[log["status"] == "ok"]["label"].value_counts()
    labels = sorted(set(training_counts) | set(recent.index))
    total_recent, total_training = max(int(recent.sum()), 1), max(sum(training_counts.values()), 1)
    frame = pd.DataFrame({
        "label": labels,
        "recent predictions": [int(recent.get(label, 0)) / total_recent for label in labels],
        "training data": [training_counts.get(label, 0) / total_training for label in labels],
    })
    distance = float((frame["recent predictions"] - frame["training data"]).abs().sum() / 2) if len(recent) else 0.0
    return frame, distance


def model_usage(log: pd.DataFrame) -> pd.DataFrame:
    """Predictions and distinct users per model run."""
    if log.empty:
        return pd.DataFrame(columns=["run_id", "predictions", "users"])
    grouped = log.groupby("run_id")
    return pd.DataFrame({"predictions": grouped.size(), "users": grouped["username"].nunique()}).reset_index()


def feedback_agreement(store: Store) -> pd.DataFrame:
    """Per run: how much feedback came back and the share saying the prediction was right."""
    frame = pd.DataFrame(store.rows(select(feedback.c.run_id, feedback.c.is_correct)), columns=["run_id", "is_correct"])
    if frame.empty:
        return pd.DataFrame(columns=["run_id", "feedback", "agreement"])
    grouped = frame.groupby("run_id")["is_correct"]
    return pd.DataFrame({"feedback": grouped.size(), "agreement": grouped.mean().astype(float)}).reset_index()
