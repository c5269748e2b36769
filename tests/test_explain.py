"""Why this label: exact word weights for TF-IDF + logistic regression, occlusion for the other kinds."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from core.models.baselines import TfidfLogisticRegression
from core.models.classifiers import ModelSpec, TrainingData
from core.models.model_kinds import model_kinds
from tests.test_model_conformance import LABELS, training_data


@pytest.fixture
def fitted(config):
    return TfidfLogisticRegression(LABELS, None, ModelSpec.of(config)).fit(training_data(LABELS), lambda _: None, threading.Event())


def test_tfidf_weights_are_the_hand_computed_contributions(fitted):
    text = "I was charged twice and the refund never arrived"
    explanation = fitted.explain(text)
    tfidf, classifier = fitted.pipeline.named_steps["tfidf"], fitted.pipeline.named_steps["clf"]
    scores = fitted.predict_proba([text])[0]
    label, runner_up = np.argsort(-scores)[:2]
    assert (explanation.label, explanation.runner_up) == (LABELS[label], LABELS[runner_up])
    difference = classifier.coef_[list(classifier.classes_).index(label)] - \
        classifier.coef_[list(classifier.classes_).index(runner_up)]
    vector = tfidf.transform([text]).toarray()[0]
    # every feature's share reaches the words: they add up to the whole margin but the intercepts
    assert sum(w.weight for w in explanation.words) == pytest.approx(float(vector @ difference), abs=1e-9)
    # one word by hand: its unigram, plus half of each bigram it is in
    vocabulary = tfidf.vocabulary_
    by_word = {w.word: w.weight for w in explanation.words}
    expected = vector[vocabulary["charged"]] * difference[vocabulary["charged"]]
    for bigram in ("was charged", "charged twice"):
        if bigram in vocabulary:
            expected += vector[vocabulary[bigram]] * difference[vocabulary[bigram]] / 2
    assert by_word["charged"] == pytest.approx(expected, abs=1e-12)
    assert "I" not in by_word  # a one-letter word is no feature of the vectoriser: not weighed
    assert explanation.strongest(1)[0].word in {"charged", "refund", "twice"}


def test_a_two_label_model_explains_with_its_single_coefficient_row(config):
    labels = ["billing", "delivery"]
    data = training_data(["billing", "delivery", "app"])
    keep = [i for i, y in enumerate(data.train_labels) if y < 2]
    two = TrainingData(labels, [data.train_texts[i] for i in keep], [data.train_labels[i] for i in keep])
    model = TfidfLogisticRegression(labels, None, ModelSpec.of(config)).fit(two, lambda _: None, threading.Event())
    for text, label in (("the parcel arrived late", "delivery"), ("my invoice shows the wrong amount", "billing")):
        explanation = model.explain(text)
        assert explanation.label == label and explanation.strongest(1)[0].weight > 0


@pytest.mark.parametrize("kind", [k for k in model_kinds() if k != "tfidf_logreg"])
def test_other_kinds_explain_by_occlusion_with_words_where_they_are(kind, config_file, tiny_bert):
    from core.platform.config import Hyperparameters

    config = config_file(f'[model]\nname = "{tiny_bert}"\nmax_length = 32\n')
    settings = Hyperparameters(batch_size=16, epochs=2, learning_rate=1e-3, early_stopping_patience=2)
    model = model_kinds()[kind](LABELS, settings, ModelSpec.of(config)).fit(training_data(LABELS), lambda _: None,
                                                              threading.Event())
    text = "the courier lost my parcel, tracking stuck"
    explanation = model.explain(text)
    assert explanation.method.startswith("occlusion") and explanation.label in LABELS
    assert [w.word for w in explanation.words] == ["the", "courier", "lost", "my", "parcel", "tracking", "stuck"]
    assert all(text[w.start:w.end] == w.word for w in explanation.words)
    # the weights are margin drops: leaving the strongest word out lowers the label's lead by exactly that much
    top = max(explanation.words, key=lambda w: w.weight)
    scores = model.predict_proba([text, text[:top.start] + text[top.end:]])
    label, runner_up = LABELS.index(explanation.label), LABELS.index(explanation.runner_up)
    drop = (scores[0, label] - scores[0, runner_up]) - (scores[1, label] - scores[1, runner_up])
    assert top.weight == pytest.approx(drop, abs=1e-5)
