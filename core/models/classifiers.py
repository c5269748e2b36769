"""The one small interface every model kind implements, and the registry of kinds.

Like a scikit-learn estimator: built from its label names and its own typed hyper-parameters, ``fit`` on
training data (reporting progress through a callback, honouring a stop signal, keeping scratch files in the
``workdir`` it is given), ``predict_proba`` and ``predict`` on texts. Like SetFit, ``save`` writes a
self-describing folder: the kind's files and ``model.json`` (kind, labels, checksums, what loading needs), so
``core.models.model_kinds.load_model_folder`` loads any saved model on its own, without the run that trained it. What a kind can do
is said by class attributes (``family``, ``precisions``, ``plans_recipe``), never by checking its name.
"""

from __future__ import annotations

import dataclasses

import hashlib
import zipfile
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar

import numpy as np

from core.models.multilabel import TagDecisions, indicator
from core.platform.config import AppConfig, Hyperparameters
from core.platform.workspace import write_json_atomic

if TYPE_CHECKING:
    from core.models.explain import Explanation

#: The description every saved model folder carries beside its files.
MODEL_CARD = "model.json"
#: The human-readable card written beside a trained model (core.training.model_card): documentation, never loaded.
MODEL_README = "README.md"
CARD_VERSION = 1


@dataclass
class TrainingData:
    """Texts and label ids of the splits a model may learn from or select on (never test). Multi-label data
    carries a list of tag ids per text instead of one label id."""

    label_names: list[str]
    train_texts: list[str]
    train_labels: list[int] | list[list[int]]
    validation_texts: list[str] = field(default_factory=list)
    validation_labels: list[int] | list[list[int]] = field(default_factory=list)
    multi_label: bool = False

    def validation_matrix(self) -> np.ndarray:
        """The validation split's tags as a 0/1 matrix (multi-label data)."""
        return indicator(self.validation_labels, len(self.label_names))


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
    #: What ``step`` counts: "step" (optimiser steps) or "text" (texts read, e.g. for a linear probe).
    unit: str = "step"


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
    found = {str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file()} - {MODEL_CARD, MODEL_README}
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


@dataclass(frozen=True)
class ModelSpec:
    """What a model is built on besides its own hyper-parameters: the pre-trained model and the length it reads,
    the seed, and how to use this machine (threads, precision, logging and checkpoints). A run freezes the
    first four in its record (:func:`core.training.execution.run_config`)."""

    model_name: str
    max_length: int
    seed: int = 42
    cpu_threads: int = 0
    precision: str = "auto"
    logging_steps: int = 10
    save_total_limit: int = 2

    @classmethod
    def of(cls, config: AppConfig) -> "ModelSpec":
        """The spec a configuration describes."""
        training = config.training
        return cls(config.model.name, config.model.max_length, training.seed, training.cpu_threads,
                   training.precision, training.logging_steps, training.save_total_limit)


class TextClassifier(ABC):
    """Base of every model kind."""

    kind: ClassVar[str]
    title: ClassVar[str]
    #: What it is and when to pick it, in one line for the Train page.
    blurb: ClassVar[str] = ""
    #: Rough training cost rank: the app offers and queues cheaper kinds first, so results arrive early.
    cost_rank: ClassVar[int] = 0
    #: "baseline" or "transformer": the comparison asks whether fine-tuning beat the baselines.
    family: ClassVar[str] = "baseline"
    #: The precisions it can be served at (fp32 always; reduced ones pass a validation check first).
    precisions: ClassVar[tuple[str, ...]] = ("fp32",)
    #: Whether its batch size and epochs are planned from the data and the measured speed (core.training.recipe).
    plans_recipe: ClassVar[bool] = False
    #: Whether several processes (torchrun) can train one run together; under torchrun any other kind is trained
    #: by rank 0 alone while the others wait.
    data_parallel: ClassVar[bool] = False
    #: Whether it is built on the configured pre-trained model (whose fingerprint a run then records).
    uses_pretrained: ClassVar[bool] = False
    #: Whether it trains in seconds, so that its validation score can come from k-fold cross-validation on the
    #: train and validation splits (core.evaluation.cross_validation): more evidence where it is cheap.
    cross_validates: ClassVar[bool] = False
    #: Whether it trains on multi-label data (a score per tag, tags given by per-tag thresholds).
    multi_label_capable: ClassVar[bool] = False
    #: Whether it learns what each label means from the training texts (zero-shot reads the label names, and
    #: uses labelled texts only to scale its confidence).
    learns_from_examples: ClassVar[bool] = True

    #: The kind's own typed hyper-parameters (a frozen dataclass; its defaults are today's values).
    Settings: ClassVar[type] = Hyperparameters

    @classmethod
    def described(cls, settings: Any, descriptions: dict[str, str]) -> Any:
        """The settings for a run given the sentences people wrote about the labels; a kind that reads them
        (zero-shot) keeps them, the others need nothing."""
        return settings

    @classmethod
    def settings_for(cls, hyperparameters: Any = None) -> Any:
        """``hyperparameters`` when they are this kind's, else the kind's defaults: a preset's transformer
        settings say nothing about a baseline."""
        return hyperparameters if isinstance(hyperparameters, cls.Settings) else cls.Settings()

    @classmethod
    def settings_from_record(cls, values: dict[str, Any]) -> Any:
        """The typed hyper-parameters frozen in a run record. A record written before the kind had settings of
        its own holds another kind's fields (which it ignored then): it gets the defaults it trained with."""
        names = {f.name for f in dataclasses.fields(cls.Settings)}
        return cls.Settings(**values) if set(values) <= names else cls.Settings()

    @classmethod
    def records_own_settings(cls, values: dict[str, Any]) -> bool:
        """Whether a run record's hyper-parameters are this kind's own (not another kind's, from before)."""
        return set(values) <= {f.name for f in dataclasses.fields(cls.Settings)}

    def __init__(self, label_names: list[str], settings: Any, spec: ModelSpec) -> None:
        """``settings`` are the kind's hyper-parameters to train with (``Settings``; None or another kind's: its
        defaults); ``spec`` what it is built on (the pre-trained model, the seed, the machine's use)."""
        self.label_names = list(label_names)
        self.settings = self.settings_for(settings)
        self.spec = spec
        self.fit_info: dict[str, Any] = {}
        #: How tags are given, for a multi-label model (None: single-label, one label per text).
        self.decisions: TagDecisions | None = None

    @property
    def multi_label(self) -> bool:
        return self.decisions is not None

    def targets_for(self, data: TrainingData) -> Any:
        """What a fit learns from: the label ids, or for multi-label data a 0/1 tag matrix (the model then gives
        tags by thresholds: 0.5 each until :meth:`tune_thresholds`; at least one tag per text when every training
        text had one)."""
        if not data.multi_label:
            self.decisions = None
            return data.train_labels
        if not self.multi_label_capable:
            raise ValueError(f"{self.title} does not train on multi-label data")
        self.decisions = TagDecisions.untuned(len(self.label_names), at_least_one=all(data.train_labels))
        return indicator(data.train_labels, len(self.label_names))

    def tune_thresholds(self, data: TrainingData) -> None:
        """Per-tag thresholds chosen on the validation split (core.models.multilabel.tune_thresholds), kept when
        they beat one 0.5 threshold on macro-F1 over validation texts they were not tuned on
        (core.models.multilabel.held_out_macro_f1); otherwise 0.5 for every tag (with at least one tag per
        text, the best-scoring tag can do better than thresholds tuned one tag at a time: TF-IDF + naive Bayes on
        GoEmotions). ``fit_info`` says which was kept and why."""
        from core.models.multilabel import held_out_macro_f1, tune_thresholds

        if self.decisions is None or not data.validation_texts:
            return
        scores, truth = self.predict_proba(data.validation_texts), data.validation_matrix()
        at_least_one = self.decisions.at_least_one
        figures = held_out_macro_f1(scores, truth, at_least_one, self.spec.seed)
        self.decisions = (TagDecisions(tuple(float(t) for t in tune_thresholds(scores, truth)), at_least_one, True)
                          if figures["per_tag"] >= figures["one_half"]
                          else TagDecisions.untuned(len(self.label_names), at_least_one))
        self.fit_info["thresholds"] = {"kept": "per tag" if self.decisions.tuned else "0.5 for every tag",
                                       "held_out_validation_macro_f1": {k: round(v, 4) for k, v in figures.items()}}

    def predict_tags(self, texts: list[str]) -> list[tuple[str, ...]]:
        """Each text's tags (a multi-label model), in label order."""
        if self.decisions is None:
            raise ValueError(f"this {self.title} model gives one label per text, not tags")
        given = self.decisions.apply(self.predict_proba(texts))
        return [tuple(self.label_names[j] for j in np.flatnonzero(row)) for row in given]

    @abstractmethod
    def fit(self, data: TrainingData, progress: ProgressCallback, stop: threading.Event,
            workdir: Path | None = None) -> "TextClassifier":
        """Train on ``data``; report through ``progress``; raise TrainingCancelled if ``stop`` is set (before
        or during training); scratch files (checkpoints) go under ``workdir``, or a temporary folder."""

    @abstractmethod
    def predict_proba(self, texts: list[str]) -> np.ndarray:
        """Scores per label, columns in ``label_names`` order: rows sum to 1, or for a multi-label model each
        tag's own probability."""

    def predict(self, texts: list[str]) -> list[str]:
        return [self.label_names[i] for i in self.predict_proba(texts).argmax(axis=1)]

    def truncation(self) -> tuple[Any, int] | None:
        """The tokenizer and token count beyond which this model ignores text; None if it reads everything."""
        return None

    def score(self, texts: list[str]) -> tuple[np.ndarray, list[bool]]:
        """Scores per label and, per text, whether the model read only its beginning (cut at its limit)."""
        return self.predict_proba(texts), truncated_flags(self.truncation(), texts)

    def precision_check(self, texts: list[str], label_ids: list[int], max_accuracy_loss: float,
                        min_agreement: float = 0.0, folder: Path | None = None) -> Any:
        """Serving variants checked on validation texts (a PrecisionCheck), from the model saved in ``folder``;
        None when the kind has none."""
        return None

    def explain(self, text: str) -> "Explanation":
        """The words that pushed ``text`` towards its predicted label and away from the runner-up (occlusion
        unless the kind can say exactly)."""
        from core.models.explain import Explanation, occlusion, top_two

        label, runner_up = top_two(self.predict_proba([text])[0])
        return Explanation(self.label_names[label], None if runner_up is None else self.label_names[runner_up],
                           "occlusion: how much the margin falls without the word",
                           occlusion(self.predict_proba, text, label, runner_up))

    def explain_tag(self, text: str, tag: str) -> "Explanation":
        """For a tagger: the words that raised (or lowered) one tag's own score, by occlusion (each tag has its
        own score, so there is no runner-up to weigh it against)."""
        from core.models.explain import Explanation, occlusion

        if tag not in self.label_names:
            raise ValueError(f"{tag!r} is not one of this model's tags ({', '.join(self.label_names)})")
        return Explanation(tag, None, "occlusion: how much the tag's score falls without the word",
                           occlusion(self.predict_proba, text, self.label_names.index(tag), None))

    def use_precision(self, precision: str) -> None:
        """Serve at a reduced precision; models without reduced variants accept only fp32."""
        if precision != "fp32":
            raise ValueError(f"{self.title} has no {precision} variant")

    def save(self, folder: Path) -> dict[str, Any]:
        """Write a self-describing folder: the kind's files, then ``model.json`` describing them; returns it."""
        folder.mkdir(parents=True, exist_ok=True)
        details = self.write_files(folder)
        task = {"task": "multi-label", "decisions": self.decisions.to_dict()} if self.decisions else {}
        card = {"card_version": CARD_VERSION, "kind": self.kind, "title": self.title,
                "label_names": self.label_names, **task, **details, "files": folder_checksums(folder)}
        write_json_atomic(folder / MODEL_CARD, card)
        return card

    @abstractmethod
    def write_files(self, folder: Path) -> dict[str, Any]:
        """Write the kind's files into ``folder``; return what ``load`` needs besides the labels."""

    @classmethod
    @abstractmethod
    def load(cls, folder: Path, saved: dict[str, Any], spec: ModelSpec) -> "TextClassifier":
        """Read a model written by ``save``; ``saved`` is its card (``model.json``, or a run's copy of it)."""
