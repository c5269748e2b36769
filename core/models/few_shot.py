"""Few-shot: the sentence encoder tuned on the few labelled texts, then logistic regression on what it reads
(SetFit's idea, on sentence-transformers: SetFit itself does not run on transformers 5).

With a handful of texts per label, fine-tuning a classifier end to end overfits, and frozen embeddings keep
whatever the pre-trained encoder thought close. Tuning the encoder on which texts share a label moves texts of
one label together and others apart before the head is fitted. Two ways, chosen by the number of labels
(``loss = "auto"``), as measured with 8 texts per label (README, *A few labelled texts per label*):

- *contrastive* (three labels or more): batches of texts grouped by label (several labels, at least two texts
  each), and supervised contrastive loss (Khosla et al., 2020): each text is pulled towards the others of its
  label in the batch and pushed from the rest, over 15 passes. CLINC150, 150 intents: 0.926 accuracy (10
  passes: 0.924), where SetFit's pairs gave 0.895 and frozen embeddings 0.896; the demo feedback's 5 labels:
  0.927 (10 passes), where the pairs gave 0.908 and frozen embeddings 0.911;
- *similarity* (two labels: a batch of two labels teaches little): SetFit's own pairs, one of the same label
  (cosine 1) and one of another label (cosine 0) per text and round, with cosine-similarity loss. UCI's two
  labels: 0.858, where the contrastive loss gave 0.840 and frozen embeddings 0.794.

Then the encoder's mean-pooled embeddings of the training texts fit the head, as in the embeddings kind. The
tuned encoder is saved in the model folder (``encoder/``), so the folder loads on its own.
"""

from __future__ import annotations

import random
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.models.classifiers import (
    ModelSpec, Progress, ProgressCallback, TrainingCancelled, TrainingData, load_skops, sha256_file,
    verify_checksum,
)
from core.models.embeddings import HEAD_FILE, EmbeddingLogisticRegression, EmbeddingLogRegSettings
from core.models.pretrained import resolve_model_source

ENCODER_DIR = "encoder"
#: From this many labels on, the contrastive loss (batches of several labels) is used.
CONTRASTIVE_MIN_LABELS = 3
LOSSES = ("auto", "contrastive", "similarity")


@dataclass(frozen=True)
class FewShotSettings(EmbeddingLogRegSettings):
    """Tuning the encoder, then the embeddings kind's head (its ``c``, ``max_iter``, ``class_weighted``)."""

    #: "contrastive", "similarity", or "auto" (contrastive from CONTRASTIVE_MIN_LABELS labels on).
    loss: str = "auto"
    #: Contrastive: passes over the texts, texts per batch, learning rate.
    contrastive_epochs: float = 15.0
    contrastive_batch_size: int = 128
    contrastive_learning_rate: float = 1e-4
    #: Similarity: rounds of pairs (each text paired twice per round), pairs per batch, learning rate (one pass).
    pairs_per_text: int = 20
    pair_batch_size: int = 16
    pair_learning_rate: float = 5e-5
    #: Contrastive loss: how sharply similarity is read (1 / temperature).
    scale: float = 20.0
    warmup_ratio: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if min(self.contrastive_batch_size, self.pair_batch_size) < 2:
            raise ValueError("batch sizes must be at least 2")
        if min(self.pairs_per_text, self.contrastive_epochs, self.contrastive_learning_rate,
               self.pair_learning_rate, self.scale) <= 0:
            raise ValueError("pairs_per_text, epochs, learning rates and scale must be above 0")

    def loss_for(self, labels: int) -> str:
        if self.loss != "auto":
            return self.loss
        return "contrastive" if labels >= CONTRASTIVE_MIN_LABELS else "similarity"


def similarity_pairs(texts: list[str], labels: list[int], rounds: int, rng: random.Random) -> dict[str, list]:
    """SetFit's pairs: per round and text, one of its label (score 1) and one of another label (score 0)."""
    by_label: dict[int, list[str]] = {}
    for text, label in zip(texts, labels):
        by_label.setdefault(label, []).append(text)
    first, second, score = [], [], []
    for _ in range(rounds):
        for text, label in zip(texts, labels):
            other = rng.choice([l for l in by_label if l != label])
            for partner, value in ((rng.choice(by_label[label]), 1.0), (rng.choice(by_label[other]), 0.0)):
                first.append(text)
                second.append(partner)
                score.append(value)
    order = list(range(len(first)))
    rng.shuffle(order)
    return {"sentence1": [first[i] for i in order], "sentence2": [second[i] for i in order],
            "score": [score[i] for i in order]}


def supervised_contrastive_loss(model: Any, scale: float) -> Any:
    """Supervised contrastive loss over a batch of (text, label): each text's log-probability of picking the
    other texts of its label among the whole batch, by scaled cosine similarity (sentence-transformers has the
    triplet losses, not this one)."""
    import torch

    class SupervisedContrastiveLoss(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, features, labels):
            vectors = torch.nn.functional.normalize(self.model(features[0])["sentence_embedding"], dim=-1)
            itself = torch.eye(len(vectors), dtype=torch.bool, device=vectors.device)
            log_p = torch.log_softmax((vectors @ vectors.T * scale).masked_fill(itself, float("-inf")), dim=1)
            same = (labels[:, None] == labels[None, :]) & ~itself
            has = same.sum(1) > 0
            return -(log_p.masked_fill(~same, 0).sum(1)[has] / same.sum(1)[has]).mean()

    return SupervisedContrastiveLoss()


def tune_encoder(base: str, max_length: int, data: TrainingData, settings: FewShotSettings, seed: int,
                 out: Path, progress: ProgressCallback, stop: threading.Event) -> Path:
    """Tune the sentence encoder ``base`` on the training texts; save it to ``out`` and return it."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
    from sentence_transformers import SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer import losses
    from transformers import PrinterCallback, TrainerCallback, set_seed

    set_seed(seed)
    model = SentenceTransformer(resolve_model_source(base), device="cpu")
    model.max_seq_length = max_length
    kind = settings.loss_for(len(set(data.train_labels)))
    if kind == "contrastive":
        rows = Dataset.from_dict({"text": data.train_texts, "label": data.train_labels})
        loss, sampler = supervised_contrastive_loss(model, settings.scale), BatchSamplers.GROUP_BY_LABEL
        # grouping by label takes two texts of each label in turn: an even batch of at least four
        epochs, batch, rate = (settings.contrastive_epochs,
                               max(4, min(settings.contrastive_batch_size, len(rows)) // 2 * 2),
                               settings.contrastive_learning_rate)
    else:
        rows = Dataset.from_dict(similarity_pairs(data.train_texts, data.train_labels, settings.pairs_per_text,
                                                  random.Random(seed)))
        loss, sampler = losses.CosineSimilarityLoss(model), BatchSamplers.BATCH_SAMPLER
        epochs, batch, rate = 1.0, settings.pair_batch_size, settings.pair_learning_rate
    what = (f"{len(rows):,} texts grouped by label" if kind == "contrastive" else f"{len(rows):,} pairs")

    class Trainer(SentenceTransformerTrainer):
        def add_model_card_callback(self, default_args_dict):
            """No model card: sentence-transformers' card quotes training texts as examples (customers' words
            would sit in the saved model); the studio writes its own card."""

    class Report(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            progress(Progress(state.global_step, state.max_steps, epoch=state.epoch,
                              message=f"tuning the encoder on {what}", unit="step"))
            if stop.is_set():
                control.should_training_stop = True

    with tempfile.TemporaryDirectory(dir=out.parent) as scratch:
        arguments = SentenceTransformerTrainingArguments(
            output_dir=scratch, num_train_epochs=epochs, per_device_train_batch_size=batch,
            learning_rate=rate, warmup_steps=settings.warmup_ratio, weight_decay=0.0, seed=seed, data_seed=seed,
            batch_sampler=sampler, save_strategy="no", report_to="none", use_cpu=True, disable_tqdm=True,
            logging_strategy="no", dataloader_pin_memory=False)
        trainer = Trainer(model=model, args=arguments, train_dataset=rows, loss=loss, callbacks=[Report()])
        trainer.remove_callback(PrinterCallback)  # it prints the run's figures to the worker's output
        trainer.train()
    if stop.is_set():
        raise TrainingCancelled()
    model.save(str(out), create_model_card=False)
    return out


class FewShotClassifier(EmbeddingLogisticRegression):
    kind = "few_shot"
    title = "Few-shot (tuned sentence encoder)"
    blurb = ("The sentence encoder first learns from pairs of your labelled texts which belong together, then "
             "logistic regression reads it (SetFit's method): for a handful of examples per label; minutes.")
    cost_rank = 2
    Settings = FewShotSettings
    multi_label_capable = False
    cross_validates = False  # each fold would tune the encoder again: minutes, not seconds

    def __init__(self, label_names, settings, spec: ModelSpec) -> None:
        super().__init__(label_names, settings, spec)
        self._scratch: tempfile.TemporaryDirectory | None = None

    def fit(self, data: TrainingData, progress: ProgressCallback, stop: threading.Event,
            workdir: Path | None = None) -> "FewShotClassifier":
        if stop.is_set():
            raise TrainingCancelled()
        self._scratch = tempfile.TemporaryDirectory(dir=workdir, prefix="few-shot-")
        tuned = tune_encoder(self.encoder_name, self.max_length, data, self.settings, self.spec.seed,
                             Path(self._scratch.name) / ENCODER_DIR, progress, stop)
        self.encoder_name = str(tuned)
        return super().fit(data, progress, stop, workdir)

    def write_files(self, folder: Path) -> dict[str, Any]:
        destination = folder / ENCODER_DIR
        if Path(self.encoder_name) != destination:
            shutil.copytree(self.encoder_name, destination, dirs_exist_ok=True)
        details = super().write_files(folder)
        return {**details, "encoder": ENCODER_DIR, "sha256": sha256_file(folder / HEAD_FILE)}

    @classmethod
    def load(cls, folder: Path, saved: dict[str, Any], spec: ModelSpec) -> "FewShotClassifier":
        path = folder / saved.get("file", HEAD_FILE)
        verify_checksum(path, saved.get("sha256"))
        model = cls(saved["label_names"], None, spec)
        model.encoder_name, model.max_length = str(folder / saved["encoder"]), saved["max_length"]
        model.head = load_skops(path)
        return model
