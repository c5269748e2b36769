"""The recommended model is the better one, or the page says it cannot tell: leads judged on the paired bootstrap
of the validation texts, a tie broken by cost, the transformer's verdict by the same rule, and the command
line's final line carrying ``clear`` and each candidate's interval."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from core.evaluation.scoring import ScoredSet
from core.experiments.comparison import Evidence, Sample, recommend, transformer_verdict, with_intervals
from core.services import Caller, Studio
from core.services.evaluation import recommendation
from tests.conftest import ANALYST, save_demo_version, train_runs

LABELS = 10


def predictions(seed: int = 0, n: int = 300):
    """True labels and a run right on 60 % of the texts."""
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, LABELS, n)
    right = rng.random(n) < 0.6
    return y_true, np.where(right, y_true, (y_true + 1 + rng.integers(0, LABELS - 1, n)) % LABELS)


def changed(y_true, y_pred, fix: int, spoil: int, seed: int):
    """Another run: ``fix`` of the first run's wrong texts right, ``spoil`` of its right ones wrong."""
    rng = np.random.default_rng(seed)
    other = y_pred.copy()
    wrong, right = np.flatnonzero(y_pred != y_true), np.flatnonzero(y_pred == y_true)
    fixed, spoiled = rng.choice(wrong, fix, replace=False), rng.choice(right, spoil, replace=False)
    other[fixed], other[spoiled] = y_true[fixed], (y_true[spoiled] + 1) % LABELS
    return other


def table_of(y_true, runs: dict[str, tuple[str, str, np.ndarray, float]]) -> tuple[pd.DataFrame, Evidence]:
    """A comparison table of runs (kind, family, validation predictions, texts/s) and their evidence."""
    from sklearn.metrics import f1_score

    rows = [{"run": run, "model": run.upper(), "name": run.upper(), "kind": kind, "family": family,
             "macro_f1": 0.5, "validation macro_f1": f1_score(y_true, pred, average="macro"), "texts/s": speed}
            for run, (kind, family, pred, speed) in runs.items()]
    evidence = Evidence(Sample(y_true, {run: pred for run, (_, _, pred, _) in runs.items()},
                               f"{len(y_true)} validation texts"), LABELS)
    return pd.DataFrame(rows), evidence


def test_a_clear_lead_is_recommended_and_said_clear():
    y_true, baseline = predictions()
    better = changed(y_true, baseline, fix=45, spoil=5, seed=1)  # +13 points of accuracy
    table, evidence = table_of(y_true, {"base": ("tfidf_logreg", "baseline", baseline, 900.0),
                                        "tuned": ("transformer", "transformer", better, 50.0)})
    best = recommend(table, "macro_f1", evidence)
    assert best.run_id == "tuned" and best.clear is True and best.tied == ()
    assert "clearly above BASE (by +0." in best.reason and "paired 95% interval +0." in best.reason
    assert transformer_verdict(table, "macro_f1", evidence).startswith("The fine-tuned transformer beats the best "
                                                                      "baseline, BASE, by 0.")


def test_a_lead_within_the_noise_is_no_clear_winner_said_with_the_cheaper_choice_named():
    """As seen on the airline tweets: the baseline 0.014 ahead on a small validation split."""
    y_true, baseline = predictions(2, n=150)
    transformer = changed(y_true, baseline, fix=6, spoil=8, seed=3)  # 2 texts worse overall, on other texts
    hopeless = changed(y_true, baseline, fix=0, spoil=40, seed=4)
    table, evidence = table_of(y_true, {"tuned": ("transformer", "transformer", transformer, 50.0),
                                        "base": ("tfidf_logreg", "baseline", baseline, 900.0),
                                        "weak": ("tfidf_nb", "baseline", hopeless, 950.0)})
    best = recommend(table, "macro_f1", evidence)
    assert best.clear is False and set(best.tied) == {"base", "tuned"}  # the weak one is clearly worse: not tied
    assert best.run_id == "base" and best.cheaper is None  # the best on validation, and the cheapest already
    assert best.reason.startswith("no clear winner: the validation macro-F1 of BASE ")
    assert "on these 150 validation texts)" in best.reason
    assert "cannot be told apart" in best.reason and "BASE is recommended, the best on validation though not by " \
                                                      "a clear margin" in best.reason
    verdict = transformer_verdict(table, "macro_f1", evidence)
    assert verdict.startswith("The fine-tuned transformer and the best baseline, BASE, cannot be told apart")

    # the costlier one ahead within the noise: recommended (the best guess there is), the cheaper one named
    table.loc[table["run"] == "tuned", "validation macro_f1"] = 0.99
    tie = recommend(table, "macro_f1", evidence)
    assert tie.clear is False and tie.run_id == "tuned" and tie.cheaper == "base"
    assert "BASE is as good within the noise and cheaper to train and serve" in tie.reason


def test_intervals_are_added_per_run_and_runs_without_evidence_keep_the_plain_rule():
    y_true, baseline = predictions(5)
    table, evidence = table_of(y_true, {"a": ("tfidf_logreg", "baseline", baseline, 1.0),
                                        "b": ("tfidf_nb", "baseline", changed(y_true, baseline, 3, 3, 6), 2.0)})
    shown = with_intervals(table, "macro_f1", evidence)
    for _, row in shown.iterrows():
        assert row["validation macro_f1 low"] <= row["validation macro_f1"] <= row["validation macro_f1 high"]
    assert with_intervals(table, "macro_f1", None)["validation macro_f1 low"].isna().all()
    plain = recommend(table, "macro_f1")
    assert plain.clear is None and plain.reason.startswith("highest validation macro-F1")
    other_texts = ScoredSet(["x"], np.array([0]), np.ones((1, 2)) / 2, ["a", "b"], "v")
    same_texts = ScoredSet(["y"], np.array([0]), np.ones((1, 2)) / 2, ["a", "b"], "v")
    assert Evidence.of({"a": other_texts, "b": same_texts}, 1000, 0.95, 0) is None  # not the same texts: no pairing


def test_trained_runs_keep_their_validation_predictions_and_the_command_line_says_if_the_lead_is_clear(
        isolated_workspace, config, capsys):
    from core.entrypoints.cli import _print_recommendation

    version = save_demo_version(isolated_workspace, config)
    records = train_runs(isolated_workspace, config, version, kinds=("tfidf_logreg", "tfidf_nb"))
    studio = Studio(config)
    caller = Caller(ANALYST)
    verdict = recommendation(studio, caller, records)
    assert verdict.clear in (True, False) and len(verdict.candidates) == 2
    for candidate in verdict.candidates:
        low, high = candidate["validation_interval"]
        assert low <= candidate["validation_macro_f1"] <= high and high - low > 0.01
    _print_recommendation(studio, caller, records)
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["clear"] is verdict.clear and line["recommended"] == verdict.run_id
    assert line["tied"] == list(verdict.tied) and (line["tied"] == []) == verdict.clear
    assert [c["validation_interval"] for c in line["candidates"]] == [c["validation_interval"]
                                                                      for c in verdict.candidates]
    studio.close()


@pytest.mark.parametrize("samples", [50])
def test_too_few_resamples_are_refused_by_the_configuration(config_file, samples):
    from core.platform.config import ConfigError

    with pytest.raises(ConfigError, match="compare: bootstrap_samples >= 100"):
        config_file(f"[compare]\nbootstrap_samples = {samples}\n")


def test_the_kept_epochs_peak_is_measured_against_the_epochs_beside_it():
    from core.evaluation.epoch_curve import epoch_peak

    spike = [{"step": 10, "epoch": 1.0, "validation_macro_f1": 0.70}, {"step": 15, "epoch": 1.5, "loss": 0.4},
             {"step": 20, "epoch": 2.0, "validation_macro_f1": 0.86},
             {"step": 30, "epoch": 3.0, "validation_macro_f1": 0.80}]
    peak = epoch_peak(spike)
    assert peak.epoch == 2.0 and peak.score == 0.86 and peak.excess == pytest.approx(0.11)
    rising = [{"epoch": float(e), "validation_macro_f1": 0.6 + 0.1 * e} for e in (1, 2, 3)]
    assert epoch_peak(rising).epoch == 3.0 and epoch_peak(rising).excess == 0.0  # still rising: no spike
    flat = [{"epoch": float(e), "validation_macro_f1": score} for e, score in ((1, 0.85), (2, 0.86), (3, 0.855))]
    assert epoch_peak(flat).excess == pytest.approx(0.0075)
    assert epoch_peak(spike[:1]) is None and epoch_peak(spike, "accuracy") is None  # nothing to compare with


def test_a_lead_no_larger_than_the_kept_epochs_spike_is_not_called_clear():
    y_true, baseline = predictions()
    better = changed(y_true, baseline, fix=45, spoil=5, seed=1)  # +13 points: clear on the paired bootstrap
    table, evidence = table_of(y_true, {"base": ("tfidf_logreg", "baseline", baseline, 900.0),
                                        "tuned": ("transformer", "transformer", better, 50.0)})
    table["epoch excess macro_f1"] = [None, 0.01]  # a flat curve: the lead stands
    assert recommend(table, "macro_f1", evidence).clear is True
    table["epoch excess macro_f1"] = [None, 0.30]  # its kept epoch a spike higher than its lead
    best = recommend(table, "macro_f1", evidence)
    assert best.run_id == "tuned" and best.clear is False and set(best.tied) == {"tuned", "base"}
    assert "TUNED kept the epoch that scored best on these same validation texts, 0.300 macro-F1 above the " \
           "epochs beside it — a lead no larger than that may be the luck of that epoch" in best.reason
    verdict = transformer_verdict(table, "macro_f1", evidence)
    assert verdict.startswith("The fine-tuned transformer and the best baseline, BASE, cannot be told apart")
    assert "may be the luck of that epoch" in verdict
