"""Epochs planned again while training runs: the budget decides how many fit, at the speed actually shown."""

from __future__ import annotations

import dataclasses
import threading

import pytest

from core.models.classifiers import ModelSpec
from core.models.epoch_budget import EpochPlan, epochs_that_fit
from core.models.model_kinds import model_kinds
from core.platform.config import Hyperparameters
from core.presentation.epoch_words import epochs_in_words
from core.training.execution import training_data
from tests.conftest import save_demo_version


def test_more_epochs_when_they_fit_fewer_when_not_never_below_those_done_or_above_the_ceiling():
    # 100 s per epoch, 10 s of evaluation still owed, 1,000 s budget, 130 s gone: 8 more fit
    assert epochs_that_fit(1, 130, 100, 10, 1000, ceiling=16) == 9
    assert epochs_that_fit(1, 130, 100, 10, 1000, ceiling=4) == 4
    assert epochs_that_fit(2, 950, 100, 10, 1000, ceiling=8) == 2  # over the budget: stop after these
    assert epochs_that_fit(3, 1200, 100, 10, 1000, ceiling=8) == 3


def test_the_learning_rate_warms_up_then_decays_to_zero_at_the_end_of_the_epochs_planned_now():
    plan = EpochPlan(epochs=2, ceiling=6, budget_s=100, started=0, train_examples=10, validation_examples=2,
                     warmup_ratio=0.1)
    plan.start(steps_per_epoch=50)
    assert plan.warmup_steps == 10 and plan.factor(5) == pytest.approx(0.5) and plan.factor(10) == 1.0
    assert plan.factor(100) == 0.0 and plan.factor(55) == pytest.approx(0.5)
    plan.epochs = 4  # planned again after the first epoch: the decay stretches, the warm-up stays
    assert plan.factor(100) == pytest.approx(100 / 190) and plan.factor(200) == 0.0


def fit(config, tiny_bert, version, **settings):
    """Fit the tiny transformer with these hyper-parameters; its fit_info."""
    spec = dataclasses.replace(ModelSpec.of(config), model_name=str(tiny_bert), max_length=64,
                               logging_steps=1)
    hp = Hyperparameters(batch_size=16, learning_rate=1e-3, early_stopping_patience=10, warm_start=False,
                         **settings)
    model = model_kinds()["transformer"](version.labels, hp, spec)
    return model.fit(training_data(version, max_train_examples=64), lambda event: None, threading.Event()).fit_info


@pytest.mark.slow
def test_a_run_faster_than_planned_spends_its_budget_on_more_epochs(isolated_workspace, config, tiny_bert):
    version = save_demo_version(isolated_workspace, config)
    info = fit(config, tiny_bert, version, epochs=1.0, budget_s=3600.0, max_epochs=3.0)
    assert round(info["epochs_run"]) == 3 and info["steps"] == 3 * (info["steps"] // 3)
    plan = info["epoch_plan"]
    assert plan["epochs_planned"] == 1 and plan["epochs_after_replanning"] == 3
    # planned again once the warm-up was over, three steps into the first epoch's four
    assert plan["replans"][0]["at_epoch"] == 0.75 and plan["replans"][0]["epochs"] == 3
    evaluated = [h["epoch"] for h in info["log_history"] if "eval_macro_f1" in h]
    assert [round(e) for e in evaluated] == [1, 2, 3]
    rates = {h["step"]: h["learning_rate"] for h in info["log_history"] if "learning_rate" in h}
    per_epoch = info["steps"] // 3
    # the decay stretched to the end of the three epochs: still high where the first plan would have ended it
    assert rates[per_epoch + 1] > 0.5 * max(rates.values()) and rates[info["steps"]] < 0.2 * max(rates.values())


@pytest.mark.slow
def test_a_run_slower_than_planned_stops_within_its_budget(isolated_workspace, config, tiny_bert):
    version = save_demo_version(isolated_workspace, config)
    info = fit(config, tiny_bert, version, epochs=3.0, budget_s=0.01, max_epochs=8.0)
    assert round(info["epochs_run"]) == 1
    replan, = info["epoch_plan"]["replans"]
    assert (replan["at_epoch"], replan["epochs"], replan["was"]) == (0.75, 1, 3)
    assert not info["stopped_early"]  # the budget ended it, not early stopping


@pytest.mark.slow
def test_epochs_set_by_hand_are_trained_as_set(isolated_workspace, config, tiny_bert):
    version = save_demo_version(isolated_workspace, config)
    info = fit(config, tiny_bert, version, epochs=2.0)
    assert round(info["epochs_run"]) == 2 and "epoch_plan" not in info


def test_the_epochs_are_told_against_their_plan_in_words():
    plan = {"epochs_planned": 2, "epochs_after_replanning": 5, "epoch_ceiling": 8, "budget_s": 1170.0,
            "replans": [{"at_epoch": 0.25, "seconds_per_epoch": 180.4, "epochs": 6, "was": 2},
                        {"at_epoch": 3, "seconds_per_epoch": 200.0, "epochs": 5, "was": 6}]}
    words = epochs_in_words({"epochs_run": 5.0, "stopped_early": False, "epoch_plan": plan})
    assert words.startswith("Planned 2 epochs for a budget of 20 minutes")
    assert "during epoch 1, at 180 s an epoch, 6; after epoch 3, at 200 s an epoch, 5" in words
    assert words.endswith("Trained 5 epochs, as many as the time budget allowed.")
    stopped = epochs_in_words({"epochs_run": 4.0, "stopped_early": True, "epoch_plan": {**plan, "replans": []}})
    assert "kept that plan" in stopped and "early stopping" in stopped
    assert epochs_in_words({"epochs_run": 2.0, "stopped_early": False}) == "Trained 2 epochs, as set."
    assert epochs_in_words({}) == ""
