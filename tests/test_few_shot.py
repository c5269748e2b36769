"""The few-shot kind: SetFit's similarity pairs are half same-label and half other-label, the supervised
contrastive loss falls as texts of a label come together, and the loss follows the number of labels unless set."""

from __future__ import annotations

import random

import pytest
import torch

from core.models.few_shot import (
    CONTRASTIVE_MIN_LABELS, FewShotSettings, similarity_pairs, supervised_contrastive_loss,
)

TEXTS = [f"text {label}-{i}" for label in range(12) for i in range(8)]
LABELS = [label for label in range(12) for _ in range(8)]
LABEL_OF = dict(zip(TEXTS, LABELS))


def test_similarity_pairs_are_half_of_the_same_label_half_of_another():
    pairs = similarity_pairs(TEXTS, LABELS, rounds=2, rng=random.Random(0))
    assert len(pairs["score"]) == 2 * 2 * len(TEXTS) and sum(pairs["score"]) == 2 * len(TEXTS)
    for first, second, score in zip(pairs["sentence1"], pairs["sentence2"], pairs["score"]):
        assert (LABEL_OF[first] == LABEL_OF[second]) == (score == 1.0)


def test_the_contrastive_loss_is_lower_when_texts_of_a_label_sit_together():
    labels = torch.tensor([0, 0, 1, 1, 2, 2])

    def loss_of(vectors):
        encoder = lambda features: {"sentence_embedding": features}  # noqa: E731 (stands in for the model)
        return float(supervised_contrastive_loss(encoder, scale=20.0)([torch.tensor(vectors)], labels))

    together = [[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0.1, 0.9, 0], [0, 0, 1], [0, 0.1, 0.9]]
    apart = [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0.1, 0], [0.1, 1, 0], [0, 0.1, 1]]
    assert loss_of(together) < 0.1 < loss_of(apart)


def test_the_loss_follows_the_number_of_labels_unless_it_is_set():
    assert FewShotSettings().loss_for(CONTRASTIVE_MIN_LABELS) == "contrastive"
    assert FewShotSettings().loss_for(CONTRASTIVE_MIN_LABELS - 1) == "similarity"
    assert FewShotSettings(loss="contrastive").loss_for(2) == "contrastive"
    with pytest.raises(ValueError, match="loss must be one of"):
        FewShotSettings(loss="triplet")
    with pytest.raises(ValueError, match="batch sizes must be at least 2"):
        FewShotSettings(pair_batch_size=1)


def test_a_saved_few_shot_model_keeps_no_training_text(config_file, tiny_bert, tmp_path):
    """Customers' words stay in the dataset: sentence-transformers' own model card would quote training texts."""
    import threading

    from core.models.classifiers import ModelSpec, TrainingData
    from core.models.few_shot import FewShotClassifier

    config = config_file(f'[model]\nname = "{tiny_bert}"\nmax_length = 32\n')
    secret = [f"xqzvbl invoice number {i} is wrong" for i in range(6)] + [f"wqpfrt parcel {i} is late" for i in range(6)]
    data = TrainingData(["billing", "delivery"], secret, [0] * 6 + [1] * 6)
    model = FewShotClassifier(["billing", "delivery"], FewShotSettings(pairs_per_text=2), ModelSpec.of(config))
    model.fit(data, lambda _: None, threading.Event(), workdir=tmp_path)
    model.save(tmp_path / "model")
    for path in (tmp_path / "model").rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert b"xqzvbl" not in content and b"wqpfrt" not in content, path
