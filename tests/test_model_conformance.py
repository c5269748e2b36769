"""Every registered model kind passes the same interface checks (as scikit-learn's check_estimator does for
estimators): fit with progress and a stop signal, scores per label in label order, save → load → same scores."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from core.models.classifiers import MODEL_CARD, ModelFileError, ModelSpec, Progress, TrainingCancelled, TrainingData
from core.models.model_kinds import load_model_folder, model_kinds
from core.platform.config import Hyperparameters

LABELS = ["billing", "delivery", "app"]
PHRASES = {
    "billing": ["charged twice for my order", "the refund never arrived", "my invoice shows the wrong amount",
                "card was declined at checkout", "price went up without notice"],
    "delivery": ["the parcel arrived late", "courier lost my package", "box came crushed and wet",
                 "tracking has been stuck for days", "delivered to the wrong address"],
    "app": ["login fails every time", "the app crashes on start", "checkout button does nothing",
            "pages load very slowly", "cannot reset my password in the app"],
}
PROBES = ["I was charged twice", "my parcel is late again", "the app keeps crashing", "", "ok"]


def training_data(labels: list[str]) -> TrainingData:
    """Three labels, their ids following ``labels``' order."""
    texts, ids = [], []
    for copy in range(4):
        for label, phrases in PHRASES.items():
            for phrase in phrases:
                texts.append(f"{phrase} ({copy})")
                ids.append(labels.index(label))
    return TrainingData(labels, texts, ids, texts[::7], ids[::7])


@pytest.fixture
def tiny_settings(config_file, tiny_bert):
    """A configuration whose transformer is the tiny random BERT (seconds), and quick hyper-parameters."""
    config = config_file(f'[model]\nname = "{tiny_bert}"\nmax_length = 32\n')
    return config, Hyperparameters(batch_size=16, epochs=2, learning_rate=1e-3, early_stopping_patience=2)


@pytest.mark.parametrize("kind", list(model_kinds()))
def test_an_unfitted_model_says_so_with_a_named_error(kind, tiny_settings):
    """(It was an assert, which ``python -O`` removes: the model then failed later with an unrelated error.)"""
    config, settings = tiny_settings
    with pytest.raises(NotFittedError, match="fit or load the model first"):
        model_kinds()[kind](LABELS, settings, ModelSpec.of(config)).predict_proba(PROBES)


@pytest.mark.parametrize("kind", list(model_kinds()))
def test_every_model_kind_keeps_the_interface(kind, tiny_settings, tmp_path):
    config, settings = tiny_settings
    cls = model_kinds()[kind]
    assert cls.kind == kind and cls.title and cls.blurb and isinstance(cls.cost_rank, int)
    reports: list[Progress] = []
    model = cls(LABELS, settings, ModelSpec.of(config)).fit(training_data(LABELS), reports.append, threading.Event())
    assert reports and all(0 <= r.step <= max(r.total_steps, r.step) for r in reports)
    # texts read (probe, embeddings) are counted as texts, never as training steps
    assert all(r.unit == ("text" if "reading" in r.message or "embedding" in r.message else "step") for r in reports)

    scores = model.predict_proba(PROBES)
    assert scores.shape == (len(PROBES), len(LABELS)) and scores.dtype.kind == "f"
    assert np.allclose(scores.sum(axis=1), 1.0, atol=1e-4) and (scores >= 0).all()
    assert model.predict(PROBES) == [LABELS[i] for i in scores.argmax(axis=1)]
    read, cut = model.score(PROBES)
    assert np.allclose(read, scores, atol=1e-5) and cut == [False] * len(PROBES)

    card = model.save(tmp_path / "model")
    assert (card["kind"], card["label_names"]) == (kind, LABELS) and MODEL_CARD not in card["files"]
    again = load_model_folder(tmp_path / "model", ModelSpec.of(config))  # the folder alone: no run record, no card passed
    assert type(again) is cls and again.label_names == LABELS
    assert np.allclose(again.predict_proba(PROBES), scores, atol=1e-5)

    (tmp_path / "model" / "notes.txt").write_text("added later")
    with pytest.raises(ModelFileError, match="notes.txt was not saved with the model"):
        load_model_folder(tmp_path / "model", ModelSpec.of(config))


@pytest.mark.slow
@pytest.mark.parametrize("kind", [k for k, cls in model_kinds().items() if cls.learns_from_examples])
def test_columns_follow_the_label_order_given(kind, tiny_settings):
    """Column j is label_names[j], whatever order the labels came in: a model that learnt its training texts
    names them right with the labels in either order."""
    config, settings = tiny_settings
    for labels in (LABELS, ["app", "delivery", "billing"]):
        data = training_data(labels)
        model = model_kinds()[kind](labels, settings, ModelSpec.of(config)).fit(data, lambda _: None, threading.Event())
        named = model.predict(data.train_texts)
        right = np.mean([name == labels[i] for name, i in zip(named, data.train_labels)])
        assert right >= 0.8, (labels, right)


@pytest.mark.parametrize("kind", list(model_kinds()))
def test_a_stop_set_before_fit_cancels_it(kind, tiny_settings):
    config, settings = tiny_settings
    stop = threading.Event()
    stop.set()
    with pytest.raises(TrainingCancelled):
        model_kinds()[kind](LABELS, settings, ModelSpec.of(config)).fit(training_data(LABELS), lambda _: None, stop)


@pytest.mark.parametrize("kind", list(model_kinds()))
def test_every_kind_has_typed_settings_whose_defaults_survive_a_record(kind):
    """Each kind names its own frozen hyper-parameter type; what a run record stores rebuilds it exactly, and a
    record holding another kind's fields (written before kinds had their own) gets the defaults."""
    import dataclasses

    cls = model_kinds()[kind]
    defaults = cls.Settings()
    assert dataclasses.is_dataclass(defaults)
    assert cls.settings_from_record(dataclasses.asdict(defaults)) == defaults
    assert cls.settings_for(None) == defaults
    foreign = {"some_other_kinds_field": 1, **dataclasses.asdict(defaults)}
    assert cls.settings_from_record(foreign) == defaults and not cls.records_own_settings(foreign)


def tagged_data(labels: list[str]) -> TrainingData:
    """The same phrases, each text carrying its topic's tag, and every fourth text a second one ("urgent", said
    in the text; 4 is prime to the 5 phrases a topic has, so "urgent" comes with every phrase in turn)."""
    base = training_data([label for label in labels if label != "urgent"])
    names = base.label_names + ["urgent"]
    tag_ids = [[label] + ([len(names) - 1] if i % 4 == 0 else []) for i, label in enumerate(base.train_labels)]
    texts = [f"urgent please: {text}" if i % 4 == 0 else text for i, text in enumerate(base.train_texts)]
    return TrainingData(names, texts, tag_ids, texts[1::3], tag_ids[1::3], multi_label=True)


@pytest.mark.parametrize("kind", [k for k, cls in model_kinds().items() if cls.multi_label_capable])
def test_every_multi_label_kind_gives_tag_sets_keeps_its_thresholds_and_reloads(kind, tiny_settings, tmp_path):
    config, settings = tiny_settings
    data = tagged_data(LABELS)
    model = model_kinds()[kind](data.label_names, settings, ModelSpec.of(config)).fit(
        data, lambda progress: None, threading.Event())
    scores = model.predict_proba(PROBES)
    assert scores.shape == (len(PROBES), 4) and ((scores >= 0) & (scores <= 1)).all()
    model.tune_thresholds(data)
    assert model.decisions.at_least_one  # every training text had a tag
    assert model.fit_info["thresholds"]["kept"] == ("per tag" if model.decisions.tuned else "0.5 for every tag")
    # per-tag thresholds are kept when they beat 0.5 on validation texts they were not tuned on: with words that
    # say the tags they do; the tiny test encoder is random, and then 0.5 may well stay
    assert model.decisions.tuned or model.uses_pretrained
    tags = model.predict_tags(["urgent please: I was charged twice", "my parcel is late again"])
    assert all(tags) and set(tags[0]) | set(tags[1]) <= set(data.label_names)
    if not model.uses_pretrained:  # (the tiny test encoder is random: its embeddings carry no meaning)
        assert tags[0] == ("billing", "urgent") and tags[1] == ("delivery",)
    card = model.save(tmp_path / "model")
    assert card["task"] == "multi-label" and card["decisions"]["thresholds"] == list(model.decisions.thresholds)
    loaded = load_model_folder(tmp_path / "model", ModelSpec.of(config))
    assert loaded.decisions == model.decisions and loaded.predict_tags(PROBES) == model.predict_tags(PROBES)
    np.testing.assert_allclose(loaded.predict_proba(PROBES), scores, atol=1e-6)
