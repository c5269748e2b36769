"""More evidence where it is cheap: the kinds that train in seconds are scored by stratified k-fold cross-validation
on the train and validation splits (never test), and two such runs are compared on all those texts."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from core.evaluation.cross_validation import can_cross_validate, cross_validate, fold_of_each_text, load_out_of_fold
from core.evaluation.scoring import ScoredSet
from core.experiments.comparison import Evidence, bases_in_words, recommend
from core.models.baselines import TfidfLogisticRegression
from core.models.classifiers import ModelSpec, TrainingCancelled
from core.models.metrics import headline_metrics
from core.models.model_kinds import model_kinds
from core.presentation.display import progress_count
from core.services import Caller, Studio
from core.services.evaluation import compare_runs, recommendation
from core.training.execution import training_data
from core.training.runs import run_folder
from tests.conftest import ANALYST, save_demo_version, train_runs


def test_each_text_is_in_one_fold_and_each_label_spread_evenly_over_them():
    labels = [0] * 23 + [1] * 10 + [2] * 7
    marks = fold_of_each_text(labels, 5, seed=0)
    assert sorted(set(marks.tolist())) == [0, 1, 2, 3, 4] and len(marks) == len(labels)
    for label in (0, 1, 2):
        per_fold = np.bincount(marks[np.asarray(labels) == label], minlength=5)
        assert per_fold.max() - per_fold.min() <= 1  # stratified
    assert (fold_of_each_text(labels, 5, seed=0) == marks).all()  # the seed decides
    assert (fold_of_each_text(labels, 5, seed=1) != marks).any()


def demo_data(isolated_workspace, config):
    version = save_demo_version(isolated_workspace, config)
    return version, training_data(version, seed=0)


def test_out_of_fold_scores_cover_train_and_validation_never_test_and_come_from_models_that_did_not_learn_them(
        isolated_workspace, config):
    version, data = demo_data(isolated_workspace, config)
    spec = ModelSpec.of(config)
    settings = TfidfLogisticRegression.Settings()
    folds_seen: list[int] = []
    scored = cross_validate(lambda: TfidfLogisticRegression(data.label_names, settings, spec), data, 5, 0,
                            threading.Event(), lambda fold: folds_seen.append(fold.fold))
    assert folds_seen == [1, 2, 3, 4, 5]
    assert scored.texts == data.train_texts + data.validation_texts
    assert not set(scored.texts) & set(version.split_frame("test")["text"])  # the test split never touched
    assert np.allclose(scored.scores.sum(axis=1), 1.0)  # every text scored once
    in_sample = TfidfLogisticRegression(data.label_names, settings, spec).fit(
        type(data)(data.label_names, scored.texts, scored.y_true.tolist()), lambda event: None, threading.Event())
    learned = (in_sample.predict_proba(scored.texts).argmax(axis=1) == scored.y_true).mean()
    held_out = (scored.y_pred == scored.y_true).mean()
    assert learned > held_out + 0.05  # out of fold: not the texts a model learned from


def test_a_stop_during_cross_validation_cancels_and_too_little_data_is_not_cross_validated(isolated_workspace, config):
    _, data = demo_data(isolated_workspace, config)
    stop = threading.Event()
    stop.set()
    with pytest.raises(TrainingCancelled):
        cross_validate(lambda: TfidfLogisticRegression(data.label_names, None, ModelSpec.of(config)), data, 5, 0, stop)
    assert can_cross_validate(data, 5) and not can_cross_validate(data, 0)
    tiny = type(data)(data.label_names, data.train_texts[:6], [0, 1, 0, 1, 0, 1])
    assert not can_cross_validate(tiny, 5)  # fewer texts than two per fold
    assert {kind for kind, cls in model_kinds().items() if cls.cross_validates} == {
        "tfidf_logreg", "tfidf_nb", "embedding_logreg"}  # the kinds that train in seconds, never the transformer


def test_fast_runs_record_their_cross_validation_and_are_compared_on_all_its_texts(isolated_workspace, config):
    version = save_demo_version(isolated_workspace, config)
    records = train_runs(isolated_workspace, config, version, kinds=("tfidf_logreg", "tfidf_nb"))
    data = training_data(version, seed=0)
    for record in records:
        assert record.cv_metrics["folds"] == 5 and record.cv_metrics["texts"] == len(data.train_texts) + len(
            data.validation_texts)
        assert 0 < record.cv_metrics["macro_f1"] <= 1 and record.durations["cv_s"] > 0
        out_of_fold = load_out_of_fold(run_folder(isolated_workspace, record.run_id))
        assert out_of_fold is not None and len(out_of_fold.texts) == record.cv_metrics["texts"]
        assert headline_metrics(out_of_fold.y_true, out_of_fold.y_pred, len(out_of_fold.labels))["macro_f1"] == \
            pytest.approx(record.cv_metrics["macro_f1"])
    studio, caller = Studio(config), Caller(ANALYST)
    verdict = recommendation(studio, caller, records)
    assert "texts scored by 5-fold cross-validation on the train and validation splits" in verdict.reason
    for candidate in verdict.candidates:
        assert candidate["validated_on"] == f"5-fold cross-validation, {records[0].cv_metrics['texts']:,} texts"
        record = next(r for r in records if r.run_id == candidate["run"])
        assert candidate["validation_macro_f1"] == record.cv_metrics["macro_f1"]
        low, high = candidate["validation_interval"]
        assert low <= candidate["validation_macro_f1"] <= high
    studio.close()


def test_with_cross_validation_off_the_validation_split_scores_them(isolated_workspace, config_file):
    config = config_file("[compare]\ncv_folds = 0\n")
    version = save_demo_version(isolated_workspace, config)
    (record,) = train_runs(isolated_workspace, config, version, kinds=("tfidf_logreg",))
    assert record.cv_metrics is None and "cv_s" not in record.durations
    assert load_out_of_fold(run_folder(isolated_workspace, record.run_id)) is None


@pytest.mark.parametrize("folds", [1, -2])
def test_one_fold_is_refused_by_the_configuration(config_file, folds):
    from core.platform.config import ConfigError

    with pytest.raises(ConfigError, match="compare.cv_folds must be 0 \\(off\\) or at least 2"):
        config_file(f"[compare]\ncv_folds = {folds}\n")


def scored(texts: list[str], y_true: np.ndarray, y_pred: np.ndarray, labels: int, source: str) -> ScoredSet:
    return ScoredSet(texts, y_true, np.eye(labels)[y_pred], [f"l{i}" for i in range(labels)], source)


def test_a_difference_too_small_for_the_validation_split_is_clear_on_all_the_cross_validated_texts():
    """Two fast runs 3 points apart: on 100 validation texts no clear winner, on 2,000 cross-validated texts a
    clear one; a run without cross-validation is still judged on the validation split."""
    rng = np.random.default_rng(0)
    labels, n_cv, n_val = 4, 2000, 100
    y_cv = rng.integers(0, labels, n_cv)
    right_a, right_b = rng.random(n_cv) < 0.80, rng.random(n_cv) < 0.77
    wrong = (y_cv + 1) % labels
    pred_a, pred_b = np.where(right_a, y_cv, wrong), np.where(right_b, y_cv, wrong)
    texts = [f"t{i}" for i in range(n_cv)]
    validation = {run: scored(texts[:n_val], y_cv[:n_val], pred[:n_val], labels, "validation")
                  for run, pred in (("a", pred_a), ("b", pred_b), ("tuned", y_cv))}
    folds = {run: scored(texts, y_cv, pred, labels, "5-fold cross-validation on the train and validation splits")
             for run, pred in (("a", pred_a), ("b", pred_b))}
    with_folds = Evidence.of(validation, 1000, 0.95, 0, folds)
    without = Evidence.of(validation, 1000, 0.95, 0)
    assert with_folds.difference("a", "b", "accuracy").clear and not without.difference("a", "b", "accuracy").clear
    assert with_folds.sample("a", "b").words.startswith("2,000 texts scored by 5-fold cross-validation")
    assert with_folds.sample("a", "tuned").words == "100 validation texts"  # the transformer was not cross-validated
    narrow, wide = with_folds.interval("a", "accuracy"), without.interval("a", "accuracy")
    assert narrow.high - narrow.low < (wide.high - wide.low) / 2
    other_texts = scored([f"u{i}" for i in range(n_cv)], y_cv, pred_b, labels, "another cross-validation")
    mixed = Evidence.of(validation, 1000, 0.95, 0, {"a": folds["a"], "b": other_texts})
    assert mixed.sample("a", "b").words == "100 validation texts"  # not the same texts: no pairing on them


def test_the_comparison_says_what_each_validation_score_rests_on(isolated_workspace, config):
    version = save_demo_version(isolated_workspace, config)
    records = train_runs(isolated_workspace, config, version, kinds=("tfidf_logreg",))
    studio = Studio(config)
    compared = compare_runs(studio, Caller(ANALYST), records)
    words = bases_in_words(compared.table)
    assert words.startswith("Validation scores: TF-IDF + logistic regression — 5-fold cross-validation, ")
    assert bases_in_words(compared.table.assign(**{"validated on": "validation split"})) is None
    assert recommend(compared.table, "macro_f1").run_id == records[0].run_id
    studio.close()


def test_progress_counts_folds_while_cross_validating():
    assert progress_count(2, 5, "fold") == "fold 2/5"
