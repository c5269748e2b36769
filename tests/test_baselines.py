"""The baselines train with the hyper-parameters their run asked for (C, alpha, n-gram range, class weighting),
frozen in the run record; they used to hard-code C=10 and alpha=0.3 whatever the record said."""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest

from core.models.baselines import TfidfLogisticRegression, TfidfLogRegSettings, TfidfNaiveBayes, TfidfNBSettings
from core.models.classifiers import ModelSpec, TrainingData
from core.models.embeddings import EmbeddingLogRegSettings
from core.models.model_kinds import load_model_folder
from core.training.finished import finished_run
from core.training.runs import RunRequest
from tests.conftest import ANALYST, QueueWithWorker, save_demo_version

LABELS = ["billing", "delivery"]
TEXTS = ["charged twice for my order", "refund never arrived", "wrong amount on the invoice", "card declined",
         "parcel arrived late", "courier lost my package", "box came crushed", "tracking stuck for days"]
DATA = TrainingData(LABELS, TEXTS * 3, [0, 0, 0, 0, 1, 1, 1, 1] * 3, TEXTS, [0, 0, 0, 0, 1, 1, 1, 1])


def fitted(cls, settings, config):
    return cls(LABELS, settings, ModelSpec.of(config)).fit(DATA, lambda _: None, threading.Event())


def test_logistic_regression_takes_its_c_and_n_gram_range(config):
    strong = fitted(TfidfLogisticRegression, TfidfLogRegSettings(), config).pipeline
    weak = fitted(TfidfLogisticRegression, TfidfLogRegSettings(c=0.01, ngram_max=1), config).pipeline
    assert strong.named_steps["clf"].C == 10.0 and weak.named_steps["clf"].C == 0.01
    assert np.abs(weak.named_steps["clf"].coef_).sum() < np.abs(strong.named_steps["clf"].coef_).sum() / 10
    assert any(" " in term for term in strong.named_steps["tfidf"].vocabulary_)  # bigrams by default
    assert not any(" " in term for term in weak.named_steps["tfidf"].vocabulary_)


def test_naive_bayes_takes_its_alpha_and_weighting(config):
    model = fitted(TfidfNaiveBayes, TfidfNBSettings(alpha=2.5, class_weighted=False), config).pipeline
    assert model.named_steps["clf"].alpha == 2.5


@pytest.mark.parametrize("settings, wrong, words", [
    (TfidfLogRegSettings, {"c": 0}, "C must be above 0"), (TfidfNBSettings, {"alpha": -1}, "alpha must not be"),
    (TfidfLogRegSettings, {"ngram_max": 0}, "ngram_max and min_df"), (EmbeddingLogRegSettings, {"max_iter": 0}, "max_iter")])
def test_impossible_values_are_refused_in_words(settings, wrong, words):
    with pytest.raises(ValueError, match=words):
        settings(**wrong)


def test_a_run_record_freezes_the_baselines_settings_and_the_worker_trains_with_them(isolated_workspace, config):
    version = save_demo_version(isolated_workspace, config, max_rows=120)
    runner = QueueWithWorker(isolated_workspace, config)
    try:
        asked = TfidfNBSettings(alpha=1.7, ngram_max=1)
        queued = runner.submit(RunRequest(version.ref, "tfidf_nb", "quick", asked), ANALYST)
        assert queued.hyperparameters == dataclasses.asdict(asked)
        # a preset's transformer settings say nothing about a baseline: its own defaults are recorded instead
        default = runner.submit(RunRequest(version.ref, "tfidf_logreg", "quick", config.training.hyperparameters("quick")),
                                ANALYST)
        assert default.hyperparameters == dataclasses.asdict(TfidfLogRegSettings())
        done = runner.wait(queued.run_id, timeout=300)
        runner.wait(default.run_id, timeout=300)
    finally:
        runner.close()
    _, folder = finished_run(isolated_workspace, done.run_id)
    pipeline = load_model_folder(folder, ModelSpec.of(config)).pipeline
    assert pipeline.named_steps["clf"].alpha == 1.7 and pipeline.named_steps["tfidf"].ngram_range == (1, 1)
