"""The one small interface every model kind implements, and the registry of kinds.

Like a scikit-learn estimator: ``fit`` on training data (reporting progress
through a callback and honouring a stop signal), ``predict_proba`` and
``predict`` on texts, ``save`` to a folder and ``load`` back from it.
"""

from __future__ import annotations

import hashlib
import zipfile
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np

from core.config import AppConfig, TrainingConfig


@dataclass
class TrainingData:
    """Texts and label ids of the splits a model may learn from or select on (never test)."""

    label_names: list[str]
    train_texts: list[str]
    train_labels: list[int]
    validation_texts: list[str] = field(default_factory=list)
    validation_labels: list[int] = field(default_factory=list)


@dataclass
class Progress:
    """One progress report from a model's ``fit``."""

    step: int
    total_steps: int
    epoch: float | None = None
    loss: float | None = None
    #: Set when an evaluation on the validation split just finished.
    eval_metrics: dict[str, float] | None = None
    message: str = ""


ProgressCallback = Callable[[Progress], None]


class TrainingCancelled(Exception):
    """Raised by ``fit`` when the stop signal was set before training finished."""


class ModelFileError(ValueError):
    """A saved model that is missing, altered or of an unknown kind."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_checksum(path: Path, expected: str | None) -> None:
    """Refuse a model file whose content changed since the app saved it."""
    if not path.exists():
        raise ModelFileError(f"model file {path} is missing")
    if expected is None or sha256_file(path) != expected:
        raise ModelFileError(f"model file {path} does not match the checksum recorded when it was saved; "
                             "it was altered or comes from elsewhere, so it is not loaded")


def load_skops(path: Path) -> Any:
    """A scikit-learn object saved with skops, with its default trust list only: a file holding other types
    (or not a skops file at all) is refused with one line naming it, never a traceback."""
    import skops.io as sio
    from skops.io.exceptions import UntrustedTypesFoundException

    try:
        return sio.load(path)
    except UntrustedTypesFoundException as error:
        raise ModelFileError(f"model file {path} holds types that are not trusted to load ({error}); "
                             "it is not loaded") from error
    except (ValueError, KeyError, OSError, zipfile.BadZipFile) as error:
        raise ModelFileError(f"model file {path} cannot be read as a saved model ({type(error).__name__}); "
                             "it is not loaded") from error


def folder_checksums(folder: Path) -> dict[str, str]:
    """SHA-256 of every file below ``folder``, by path relative to it."""
    return {str(path.relative_to(folder)): sha256_file(path) for path in sorted(folder.rglob("*")) if path.is_file()}


def verify_folder(folder: Path, expected: dict[str, str]) -> None:
    """Refuse a model folder with a file changed, missing or added since the app saved it (naming the file)."""
    found = {str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file()}
    for extra in sorted(found - set(expected)):
        raise ModelFileError(f"model file {folder / extra} was not saved with the model; it is not loaded "
                             "(remove it, or retrain)")
    for name, digest in sorted(expected.items()):
        verify_checksum(folder / name, digest)


def truncated_flags(truncation: tuple[Any, int] | None, texts: list[str]) -> list[bool]:
    """Whether each text is longer than ``truncation``'s token limit (all False without one)."""
    if truncation is None:
        return [False] * len(texts)
    tokenizer, max_length = truncation
    ids = tokenizer(texts, add_special_tokens=True, truncation=False, verbose=False)["input_ids"]
    return [len(i) > max_length for i in ids]


class TextClassifier(ABC):
    """Base of every model kind."""

    kind: ClassVar[str]
    title: ClassVar[str]
    #: Rough training cost rank: the app offers and queues cheaper kinds first, so results arrive early.
    cost_rank: ClassVar[int] = 0

    def __init__(self, label_names: list[str], settings: TrainingConfig, config: AppConfig) -> None:
        self.label_names = list(label_names)
        self.settings = settings
        self.config = config
        self.fit_info: dict[str, Any] = {}

    @abstractmethod
    def fit(self, data: TrainingData, progress: ProgressCallback, stop: threading.Event) -> "TextClassifier":
        """Train on ``data``; report through ``progress``; raise TrainingCancelled if ``stop`` is set."""

    @abstractmethod
    def predict_proba(self, texts: list[str]) -> np.ndarray:
        """Scores per label (rows sum to 1), columns in ``label_names`` order."""

    def predict(self, texts: list[str]) -> list[str]:
        return [self.label_names[i] for i in self.predict_proba(texts).argmax(axis=1)]

    def truncation(self) -> tuple[Any, int] | None:
        """The tokenizer and token count beyond which this model ignores text; None if it reads everything."""
        return None

    def score(self, texts: list[str]) -> tuple[np.ndarray, list[bool]]:
        """Scores per label and, per text, whether the model read only its beginning (cut at its limit)."""
        return self.predict_proba(texts), truncated_flags(self.truncation(), texts)

    def precision_check(self, texts: list[str], label_ids: list[int], max_accuracy_loss: float) -> Any:
        """Reduced-precision variants checked on validation texts (a PrecisionCheck); None when there are none."""
        return None

    def use_precision(self, precision: str) -> None:
        """Serve at a reduced precision; models without reduced variants accept only fp32."""
        if precision != "fp32":
            raise ValueError(f"{self.title} has no {precision} variant")

    @abstractmethod
    def save(self, folder: Path) -> dict[str, Any]:
        """Write the model into ``folder``; return what ``load`` needs (e.g. checksums)."""

    @classmethod
    @abstractmethod
    def load(cls, folder: Path, saved: dict[str, Any], config: AppConfig) -> "TextClassifier":
        """Read a model written by ``save``; ``saved`` is what ``save`` returned."""


REGISTRY: dict[str, type[TextClassifier]] = {}


def register(cls: type[TextClassifier]) -> type[TextClassifier]:
    REGISTRY[cls.kind] = cls
    return cls


def model_kinds() -> dict[str, type[TextClassifier]]:
    """All kinds, cheapest first (importing registers them; import order does not matter)."""
    from core import baselines, embeddings, transformer  # noqa: F401  (registration side effect)

    return dict(sorted(REGISTRY.items(), key=lambda item: (item[1].cost_rank, list(REGISTRY).index(item[0]))))
