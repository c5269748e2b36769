"""Frozen sentence embeddings (the packaged MiniLM, mean pooling) + logistic regression.

The encoder is never trained, so this fits in well under a minute on a CPU
and does well with few labels. Only the small classifier is saved with the
run; the encoder is named by its source and reloaded from there.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from collections import OrderedDict
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import skops.io as sio
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.utils.class_weight import compute_sample_weight

from core.models.classifiers import (
    ModelSpec, Progress, ProgressCallback, TextClassifier, TrainingCancelled, TrainingData, load_skops,
    sha256_file, verify_checksum,
)
from core.models.multilabel import one_vs_rest
from core.models.pretrained import load_tokenizer, resolve_model_source

HEAD_FILE = "head.skops"
ENCODE_BATCH = 64


class SentenceEncoder:
    """Mean-pooled, L2-normalised token embeddings of a pre-trained transformer."""

    def __init__(self, model_name: str, max_length: int) -> None:
        import torch
        from transformers import AutoModel

        self.model_name, self.max_length = model_name, max_length
        from core.models.transformer import quiet_libraries

        quiet_libraries()
        self.tokenizer = load_tokenizer(model_name)
        self.model = AutoModel.from_pretrained(resolve_model_source(model_name)).eval()
        self._torch = torch

    def batches(self, texts: list[str]) -> Iterator[tuple[list[int], np.ndarray]]:
        """Embeddings batch by batch, texts sorted by length so padding stays small."""
        torch = self._torch
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), ENCODE_BATCH):
            index = order[start:start + ENCODE_BATCH]
            encoded = self.tokenizer([texts[i] for i in index], padding=True, truncation=True,
                                     max_length=self.max_length, return_tensors="pt")
            with torch.inference_mode():
                hidden = self.model(**encoded).last_hidden_state
            mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            yield index, torch.nn.functional.normalize(pooled, dim=-1).float().numpy()

    def encode(self, texts: list[str], on_batch=None) -> np.ndarray:
        """All embeddings in input order; ``on_batch(done)`` after each batch."""
        out = np.zeros((len(texts), self.model.config.hidden_size), dtype=np.float32)
        done = 0
        for index, vectors in self.batches(texts):
            out[index] = vectors
            done += len(index)
            if on_batch is not None:
                on_batch(done)
        return out


@functools.lru_cache(maxsize=2)
def shared_encoder(model_name: str, max_length: int) -> SentenceEncoder:
    """One encoder per model for the whole process (loading takes seconds; pages ask on every run)."""
    return SentenceEncoder(model_name, max_length)


class EmbeddingCache:
    """Sentence embeddings of texts, each encoded once (the review queue shows the same texts on every page
    run); the oldest are forgotten past ``capacity``."""

    def __init__(self, capacity: int = 20_000) -> None:
        self.capacity = capacity
        self._vectors: OrderedDict[tuple[str, int, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def embed(self, texts: list[str], model_name: str, max_length: int) -> np.ndarray:
        """One unit-length row per text, in order."""
        keys = [(model_name, max_length, text) for text in texts]
        with self._lock:
            found = {key: self._vectors[key] for key in keys if key in self._vectors}
            for key in found:
                self._vectors.move_to_end(key)
        missing = sorted({key for key in keys if key not in found})
        if missing:  # encoded outside the lock; the answer never depends on what another thread evicts meanwhile
            fresh = shared_encoder(model_name, max_length).encode([key[2] for key in missing])
            found.update(zip(missing, fresh))
            with self._lock:
                self._vectors.update(zip(missing, fresh))
                while len(self._vectors) > self.capacity:
                    self._vectors.popitem(last=False)
        return np.stack([found[key] for key in keys]) if keys else np.zeros((0, 0), np.float32)


#: The process's cache (the Streamlit server's sessions share it).
EMBEDDINGS = EmbeddingCache()


@dataclass(frozen=True)
class EmbeddingLogRegSettings:
    """Frozen sentence embeddings + logistic regression (today's values are the defaults)."""

    #: Inverse regularisation strength: larger fits the training data more closely.
    c: float = 10.0
    #: The lbfgs solver's iteration cap (it converges well before on normalised embeddings).
    max_iter: int = 3000
    #: Weigh each example by the inverse frequency of its label (balanced), for imbalanced data.
    class_weighted: bool = True

    def __post_init__(self) -> None:
        if self.c <= 0 or self.max_iter < 1:
            raise ValueError(f"C must be above 0 and max_iter at least 1, got {self.c} and {self.max_iter}")


class SentenceEncoderKind(TextClassifier):
    """What the kinds built on the frozen sentence encoder share: the encoder and length they read with (the
    configured ones when trained; saved with the model, and read back from it when loaded)."""

    uses_pretrained = True

    def __init__(self, label_names, settings, spec: ModelSpec) -> None:
        super().__init__(label_names, settings, spec)
        self.encoder_name, self.max_length = spec.model_name, spec.max_length

    @property
    def encoder(self) -> SentenceEncoder:
        return shared_encoder(self.encoder_name, self.max_length)

    def truncation(self) -> tuple[Any, int] | None:
        return load_tokenizer(self.encoder_name), self.max_length

    def saved_file(self, path: Path) -> dict[str, Any]:
        """The card entry of the kind's one file: its name and checksum, and the encoder it reads with."""
        return {"file": path.name, "sha256": sha256_file(path), "encoder": self.encoder_name,
                "max_length": self.max_length}

    @classmethod
    def restored(cls, folder: Path, saved: dict[str, Any], spec: ModelSpec, default_file: str,
                 settings: Any = None) -> tuple["SentenceEncoderKind", Path]:
        """A model of the kind reading with the encoder it was saved with, and its checked file."""
        path = folder / saved.get("file", default_file)
        verify_checksum(path, saved.get("sha256"))
        model = cls(saved["label_names"], settings, spec)
        model.encoder_name, model.max_length = saved["encoder"], saved["max_length"]
        return model, path


class EmbeddingLogisticRegression(SentenceEncoderKind):
    kind = "embedding_logreg"
    title = "Sentence embeddings + logistic regression"
    blurb = ("What each text means (the pre-trained model's sentence embeddings), then logistic regression: "
             "a minute or two; good with few examples per label.")
    cost_rank = 1
    Settings = EmbeddingLogRegSettings
    multi_label_capable = True
    cross_validates = True  # the texts are embedded once (the process's cache); each fold fits the head alone

    def __init__(self, label_names, settings, spec: ModelSpec) -> None:
        super().__init__(label_names, settings, spec)
        self.head: LogisticRegression | None = None

    def fit(self, data: TrainingData, progress: ProgressCallback, stop: threading.Event,
            workdir: Path | None = None) -> "EmbeddingLogisticRegression":
        if stop.is_set():
            raise TrainingCancelled()
        total = len(data.train_texts)

        def on_batch(done: int) -> None:
            if stop.is_set():
                raise TrainingCancelled()
            progress(Progress(done, total, message="embedding texts", unit="text"))

        features = self.encoder.encode(data.train_texts, on_batch)
        progress(Progress(0, 1, message="fitting the classifier"))
        targets = self.targets_for(data)
        self.head = LogisticRegression(max_iter=self.settings.max_iter, C=self.settings.c)
        if self.multi_label:
            self.head = one_vs_rest(self.head)
            self.head.fit(features, targets)
        else:
            weights = compute_sample_weight("balanced", targets) if self.settings.class_weighted else None
            self.head.fit(features, targets, sample_weight=weights)
        progress(Progress(1, 1, epoch=1.0, message="fitted"))
        return self

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        if self.head is None:
            raise NotFittedError("fit or load the model first")
        scores = np.zeros((len(texts), len(self.label_names)))
        if texts:
            scores[:, self.head.classes_] = self.head.predict_proba(self.encoder.encode(texts))
        return scores

    def write_files(self, folder: Path) -> dict[str, Any]:
        path = folder / HEAD_FILE
        sio.dump(self.head, path)
        return self.saved_file(path)

    @classmethod
    def load(cls, folder: Path, saved: dict[str, Any], spec: ModelSpec) -> "EmbeddingLogisticRegression":
        model, path = cls.restored(folder, saved, spec, HEAD_FILE)
        model.head = load_skops(path)
        return model
