"""Monitoring figures from the prediction and feedback logs, with numbers worked out by hand."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import insert

from core.presentation import charts
from core.accounts.auth import PermissionDenied
from core.presentation.display import rate
from core.serving.monitoring import (
    agreement_over_time, feedback_agreement, feedback_log, label_drift, model_usage,
    prediction_log, review_share_over_time, volume_over_time,
)
from core.platform.store import feedback, predictions
from tests.conftest import ADMIN, ANALYST, USER

DAY1 = datetime(2026, 11, 1, 9, 30, tzinfo=timezone.utc)
DAY2 = datetime(2026, 11, 2, 14, 0, tzinfo=timezone.utc)
# time, user, run, label, score, needs_review, status
SERVED = [
    (DAY1, "uma", "run-a", "billing", 0.9, False, "ok"),
    (DAY1, "uma", "run-a", "billing", 0.4, True, "ok"),
    (DAY1, "ben", "run-a", "delivery", 0.8, False, "ok"),
    (DAY1, "ben", "run-a", None, None, False, "empty"),
    (DAY2, "uma", "run-b", "delivery", 0.95, False, "ok"),
    (DAY2, "uma", "run-b", "delivery", 0.3, True, "ok"),
]
# time, run, predicted, should be (equal = the user agreed)
VERDICTS = [
    (DAY1, "run-a", "billing", "billing"),
    (DAY1, "run-a", "billing", "delivery"),
    (DAY2, "run-b", "delivery", "delivery"),
    (DAY2, "run-b", "delivery", "delivery"),
]


@pytest.fixture
def store(store):
    """Two days of served predictions and verdicts, on each database."""
    with store.writing() as connection:
        connection.execute(insert(predictions), [
            {"time": t, "username": u, "run_id": r, "label": l, "score": s, "needs_review": n, "status": st,
             "source": "single"} for t, u, r, l, s, n, st in SERVED])
        connection.execute(insert(feedback), [
            {"time": t, "username": "uma", "run_id": r, "text": f"text {i}", "predicted": p, "score": 0.5,
             "is_correct": p == c, "correct_label": c, "status": "pending"}
            for i, (t, r, p, c) in enumerate(VERDICTS)])
    return store


def test_volume_review_share_and_usage_per_period_and_model(store):
    log = prediction_log(store)
    assert len(log) == 6 and str(log["time"].dt.tz) == "UTC"
    volume = volume_over_time(log, "D")
    assert volume.to_dict("records") == [
        {"period": datetime(2026, 11, 1), "run_id": "run-a", "predictions": 4},
        {"period": datetime(2026, 11, 2), "run_id": "run-b", "predictions": 2}]
    share = review_share_over_time(log, "D")  # the unscored "empty" row does not count
    assert share["review_share"].round(4).tolist() == [round(1 / 3, 4), 0.5]
    assert share["predictions"].tolist() == [3, 2]
    assert len(volume_over_time(log, "h")) == 2
    usage = model_usage(log)
    assert usage.set_index("run_id").to_dict("index") == {"run-a": {"predictions": 4, "users": 2},
                                                         "run-b": {"predictions": 2, "users": 1}}


def test_agreement_overall_per_model_and_over_time(store):
    verdicts = feedback_log(store)
    per_run = feedback_agreement(verdicts).set_index("run_id")
    assert per_run.loc["run-a"].tolist() == [2, 0.5] and per_run.loc["run-b"].tolist() == [2, 1.0]
    over_time = agreement_over_time(verdicts, "D")
    assert over_time["agreement"].tolist() == [0.5, 1.0] and over_time["feedback"].tolist() == [2, 2]


def test_a_rate_shows_its_counts_and_needs_enough_cases_for_a_percentage():
    assert rate(0, 1, minimum=20) == "0 of 1"  # one correction is no "0%"
    assert rate(19, 19, minimum=20) == "19 of 19"
    assert rate(15, 20, minimum=20) == "75% (15 of 20)"
    assert rate(1234, 2000, minimum=20) == "62% (1,234 of 2,000)"
    assert rate(0, 0, minimum=20) == "—"


def test_label_drift_is_the_total_variation_distance(store):
    log = prediction_log(store)
    # scored labels: billing 2, delivery 3 -> 0.4 / 0.6; training: billing 1, delivery 1, refund 2 -> .25/.25/.5
    drift, distance = label_drift(log, {"billing": 10, "delivery": 10, "refund": 20})
    assert drift["label"].tolist() == ["billing", "delivery", "refund"]
    assert drift["recent predictions"].round(3).tolist() == [0.4, 0.6, 0.0]
    assert distance == pytest.approx((0.15 + 0.35 + 0.5) / 2)
    assert label_drift(log, {"billing": 2, "delivery": 3})[1] == pytest.approx(0.0)


def test_the_monitoring_charts_carry_the_figures(store):
    log, verdicts = prediction_log(store), feedback_log(store)
    usage = model_usage(log).merge(feedback_agreement(verdicts), on="run_id", how="left")
    figure = charts.model_usage(usage)
    assert list(figure.data[0].y) == [4, 2] and list(figure.data[0].text) == ["50% agree", "100% agree"]
    line = charts.agreement_over_time(agreement_over_time(verdicts, "D"))
    assert list(line.data[0].y) == [0.5, 1.0]


@pytest.mark.parametrize("actor", [None, USER, ANALYST])
def test_only_admins_read_logs_and_everyones_feedback(store, config, actor):
    from core.services import Caller, Studio
    from core.services.feedback import accepted, accepted_file, pending
    from core.services.logs import served_predictions, session_events, session_log, verdicts

    studio, caller = Studio(config, store=store), Caller(actor, "s9")
    reads = [served_predictions, verdicts, session_log, lambda *who: session_events(*who, "s1"), pending, accepted,
             accepted_file]
    for read in reads:
        with pytest.raises(PermissionDenied):
            read(studio, caller)
    assert len(pending(studio, Caller(ADMIN))) == 4 and len(served_predictions(studio, Caller(ADMIN))) == 6


def test_a_taggers_predictions_are_counted_per_tag_and_their_rates_followed_over_time():
    import pandas as pd

    from core.serving.monitoring import label_drift, tag_rates_over_time

    log = pd.DataFrame({"time": pd.to_datetime(["2026-12-01 10:00", "2026-12-01 11:00", "2026-12-02 09:00",
                                                "2026-12-02 10:00"], utc=True),
                        "label": ["bug; payments", "bug", "", "payments"], "status": ["ok"] * 4})
    drift, _ = label_drift(log, {"bug": 6, "payments": 3, "(no tag)": 1}, tags=True)
    assert dict(zip(drift["label"], drift["recent predictions"])) == {"(no tag)": 0.2, "bug": 0.4, "payments": 0.4}
    rates = tag_rates_over_time(log, "D")
    first_day = rates[rates["period"] == rates["period"].min()]
    assert dict(zip(first_day["tag"], first_day["rate"])) == {"bug": 1.0, "payments": 0.5}
    assert set(rates[rates["period"] == rates["period"].max()]["tag"]) == {"(no tag)", "payments"}
