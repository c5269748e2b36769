"""Few-shot: the sentence encoder tuned on pairs of the few labelled texts, then logistic regression on what it
reads (SetFit's idea, on sentence-transformers: SetFit itself does not run on transformers 5).

With a handful of texts per label, fine-tuning a classifier end to end overfits, and frozen embeddings keep
whatever the pre-trained encoder thought close. Pairs multiply the examples: every text is paired with another
of its label ``pairs_per_text`` times, and the encoder learns to put texts of one label close together and
others apart. Two ways to learn from the pairs, chosen by the number of labels (``loss = "auto"``):

- *ranking* (many labels): each batch holds one pair per label, and a text must pick its partner out of the
  batch (multiple-negatives ranking loss): every other label in the batch is a negative at no cost;
- *similarity* (few labels: too few for batches of distinct labels): SetFit's own pairs, one of the same label
  (cosine 1) and one of another label (cosine 0) per text and round, with cosine-similarity loss.

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
#: From this many labels on, batches of one pair per label are big enough for the ranking loss.
RANKING_MIN_LABELS = 8
LOSSES = ("auto", "ranking", "similarity")


@dataclass(frozen=True)
class FewShotSettings(EmbeddingLogRegSettings):
    """Contrastive tuning of the encoder, then the embeddings kind's head (its ``c``, ``max_iter``,
    ``class_weighted``)."""

    #: Rounds of pairs: each training text is paired this many times.
    pairs_per_text: int = 5
    #: "ranking", "similarity", or "auto" (ranking from RANKING_MIN_LABELS labels on).
    loss: str = "auto"
    epochs: float = 1.0
    batch_size: int = 32
    learning_rate: float = 5e-5
    warmup_ratio: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if self.pairs_per_text < 1 or self.epochs <= 0 or self.batch_size < 2 or self.learning_rate <= 0:
            raise ValueError("pairs_per_text and epochs must be positive, batch_size at least 2, the learning rate "
                             "above 0")

    def loss_for(self, labels: int) -> str:
        if self.loss != "auto":
            return self.loss
        return "ranking" if labels >= RANKING_MIN_LABELS else "similarity"


def ranking_pairs(texts: list[str], labels: list[int], rounds: int, batch_size: int,
                  rng: random.Random) -> tuple[dict[str, list[str]], list[int]]:
    """(anchor, positive) pairs of one label, laid out batch after batch so that no batch holds a label twice
    (another text of the anchor's own label would count as a wrong answer); and the batches' sizes (full but for
    the last few, when few labels are left)."""
    by_label: dict[int, list[str]] = {}
    for text, label in zip(texts, labels):
        by_label.setdefault(label, []).append(text)
    rows = [(text, rng.choice([t for t in by_label[label] if t != text] or by_label[label]), label)
            for _ in range(rounds) for text, label in zip(texts, labels)]
    rng.shuffle(rows)
    batches = []
    while rows:
        batch, seen, rest = [], set(), []
        for row in rows:
            if len(batch) < batch_size and row[2] not in seen:
                batch.append(row)
                seen.add(row[2])
            else:
                rest.append(row)
        batches.append(batch)
        rows = rest
    rng.shuffle(batches)
    flat = [row for batch in batches for row in batch]
    return {"anchor": [row[0] for row in flat], "positive": [row[1] for row in flat]}, [len(b) for b in batches]


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


def tune_encoder(base: str, max_length: int, data: TrainingData, settings: FewShotSettings, seed: int,
                 out: Path, progress: ProgressCallback, stop: threading.Event) -> Path:
    """Tune the sentence encoder ``base`` on pairs of the training texts; save it to ``out`` and return it."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer import losses
    from sentence_transformers import SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import DefaultBatchSampler
    from torch.utils.data import SequentialSampler
    from transformers import TrainerCallback, set_seed

    set_seed(seed)
    rng = random.Random(seed)
    model = SentenceTransformer(resolve_model_source(base), device="cpu")
    model.max_seq_length = max_length
    kind = settings.loss_for(len(set(data.train_labels)))
    sizes: list[int] = []
    if kind == "ranking":
        laid_out, sizes = ranking_pairs(data.train_texts, data.train_labels, settings.pairs_per_text,
                                        settings.batch_size, rng)
        pairs = Dataset.from_dict(laid_out)
        loss = losses.MultipleNegativesRankingLoss(model)
    else:
        pairs = Dataset.from_dict(similarity_pairs(data.train_texts, data.train_labels, settings.pairs_per_text, rng))
        loss = losses.CosineSimilarityLoss(model)

    class AsLaidOut(DefaultBatchSampler):
        """The ranking pairs' batches as laid out (shuffling would put a label twice in a batch)."""

        def __init__(self, dataset, batch_size, drop_last, valid_label_columns=None, generator=None, seed=0):
            super().__init__(SequentialSampler(range(len(dataset))), batch_size=batch_size, drop_last=drop_last)

        def __iter__(self):
            start = 0
            for size in sizes:
                yield list(range(start, start + size))
                start += size

        def __len__(self) -> int:
            return len(sizes)

    class Report(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            progress(Progress(state.global_step, state.max_steps, epoch=state.epoch,
                              message=f"tuning the encoder on {len(pairs):,} pairs ({kind})", unit="step"))
            if stop.is_set():
                control.should_training_stop = True

    with tempfile.TemporaryDirectory(dir=out.parent) as scratch:
        arguments = SentenceTransformerTrainingArguments(
            output_dir=scratch, num_train_epochs=settings.epochs, per_device_train_batch_size=settings.batch_size,
            learning_rate=settings.learning_rate, warmup_steps=settings.warmup_ratio, seed=seed, data_seed=seed,
            save_strategy="no", report_to="none", use_cpu=True, disable_tqdm=True, logging_strategy="no",
            dataloader_pin_memory=False, **({"batch_sampler": AsLaidOut} if kind == "ranking" else {}))
        SentenceTransformerTrainer(model=model, args=arguments, train_dataset=pairs, loss=loss,
                                   callbacks=[Report()]).train()
    if stop.is_set():
        raise TrainingCancelled()
    model.save(str(out))
    return out


class FewShotClassifier(EmbeddingLogisticRegression):
    kind = "few_shot"
    title = "Few-shot (tuned sentence encoder)"
    blurb = ("The sentence encoder first learns from pairs of your labelled texts which belong together, then "
             "logistic regression reads it (SetFit's method): for a handful of examples per label; minutes.")
    cost_rank = 2
    Settings = FewShotSettings
    multi_label_capable = False

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
