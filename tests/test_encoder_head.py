"""Mean pooling as a stock BERT layer and the head warm-started from a linear probe (tiny random BERT)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from core.models.classifiers import ModelSpec, TrainingData
from core.platform.config import Hyperparameters
from core.models.encoder_head import (
    append_mean_pooling_layer, classification_layer, fit_probe, head_features, load_probe_into,
)
from core.models.transformer import FineTunedTransformer, label_weights
from tests.conftest import save_demo_version
from tests.test_training import tiny_config

TEXTS = ["The courier left my parcel in the rain", "Refund still missing", "ok",
         "The app crashes every time I open my basket on the phone"]


def tiny_classifier(tiny_bert, labels: int = 3):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=labels).eval()
    return model, AutoTokenizer.from_pretrained(tiny_bert)


def test_the_added_layer_mean_pools_the_encoder_and_survives_a_pipeline_reload(tiny_bert, tmp_path):
    import torch
    from transformers import pipeline

    model, tokenizer = tiny_classifier(tiny_bert)
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")  # padded: the mean must skip padding
    with torch.no_grad():
        before = model.bert(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    expected = torch.nn.functional.layer_norm((before * mask).sum(1) / mask.sum(1), (before.shape[-1],))
    layers = model.config.num_hidden_layers
    append_mean_pooling_layer(model)
    assert model.config.num_hidden_layers == layers + 1
    with torch.no_grad():
        pooled = model.bert(**batch).last_hidden_state[:, 0]
    similarity = torch.nn.functional.cosine_similarity(pooled, expected)
    assert similarity.min() > 0.999, similarity

    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    with torch.no_grad():
        ours = torch.softmax(model(**batch).logits, -1).numpy()
    scored = pipeline("text-classification", model=str(tmp_path), top_k=None)(TEXTS)
    for row, result in zip(ours, scored):
        by_label = {item["label"]: item["score"] for item in result}
        assert np.allclose([by_label[f"LABEL_{i}"] for i in range(3)], row, atol=1e-5)


def test_a_probe_head_starts_at_the_probes_accuracy_not_at_chance(tiny_bert, isolated_workspace, config):
    import torch

    version = save_demo_version(isolated_workspace, config)
    frame = version.split_frame("train")
    texts, labels = frame["text"].tolist(), frame["label_id"].tolist()
    model, tokenizer = tiny_classifier(tiny_bert, labels=len(version.labels))
    append_mean_pooling_layer(model)
    features = head_features(model, tokenizer, texts, 64, bf16=False)
    probe = fit_probe(features, labels, len(version.labels))
    probe_accuracy = float((probe.logits(features).argmax(1) == np.asarray(labels)).mean())

    def accuracy() -> float:
        batch = tokenizer(texts, padding=True, truncation=True, max_length=64, return_tensors="pt")
        with torch.no_grad():
            return float((model(**batch).logits.argmax(-1).numpy() == np.asarray(labels)).mean())

    chance = 1 / len(version.labels)
    random_head = accuracy()
    load_probe_into(model, probe)
    assert accuracy() == pytest.approx(probe_accuracy, abs=0.01)
    assert probe_accuracy > max(chance, random_head) + 0.15


def test_a_two_label_probe_gives_the_same_decisions_as_scikit_learn():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    features = rng.normal(size=(200, 8)).astype(np.float32)
    labels = (features[:, 0] + 0.3 * rng.normal(size=200) > 0).astype(int).tolist()
    probe = fit_probe(features, labels, 2)
    reference = LogisticRegression(C=1.0, max_iter=1000).fit(features, labels)
    ours = probe.logits(features)
    assert np.allclose(ours[:, 1] - ours[:, 0], reference.decision_function(features), atol=1e-4)


def test_a_label_missing_from_training_is_never_predicted_by_the_probe():
    features = np.eye(3, dtype=np.float32).repeat(10, axis=0)
    probe = fit_probe(features, [0] * 10 + [1] * 10 + [0] * 10, 3)
    assert set(probe.logits(features).argmax(1)) <= {0, 1}


def test_label_weights_balance_the_loss():
    weights = label_weights([0, 0, 0, 1], 3)
    assert weights[0] * 3 == pytest.approx(weights[1] * 1) and weights[2] == 1.0


@pytest.mark.slow
def test_fit_records_mean_pooling_and_the_starting_score(tiny_bert, isolated_workspace, config_file):
    config = tiny_config(config_file, tiny_bert, epochs=1)
    version = save_demo_version(isolated_workspace, config)
    frame = {split: version.split_frame(split) for split in ("train", "validation")}
    data = TrainingData(version.labels, frame["train"]["text"].tolist(), frame["train"]["label_id"].tolist(),
                        frame["validation"]["text"].tolist(), frame["validation"]["label_id"].tolist())
    hyper = Hyperparameters(batch_size=16, epochs=1.0, learning_rate=1e-3, class_weighted=True)
    model = FineTunedTransformer(version.labels, hyper, ModelSpec.of(config))
    model.checkpoint_dir = isolated_workspace.root / "ckpt"
    model.fit(data, lambda event: None, threading.Event())
    assert model.fit_info["pooling"] == "mean"
    assert 0.0 < model.fit_info["starting_validation_macro_f1"] <= 1.0
    assert classification_layer(model.model) is model.model.classifier

    plain = FineTunedTransformer(version.labels, Hyperparameters(batch_size=16, epochs=1.0, pooling="cls",
                                                                 warm_start=False), ModelSpec.of(config))
    plain.checkpoint_dir = isolated_workspace.root / "ckpt2"
    plain.fit(data, lambda event: None, threading.Event())
    assert plain.fit_info["pooling"] == "cls" and "starting_validation_macro_f1" not in plain.fit_info
    assert plain.model.config.num_hidden_layers == model.model.config.num_hidden_layers - 1
