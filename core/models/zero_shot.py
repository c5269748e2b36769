"""Zero-shot: a text scored against the label names themselves, before anyone has labelled examples.

Each label's name (underscores read as spaces: "product_quality" → "product quality") is embedded with the
configured sentence encoder, like the texts; a text's score for a label grows with the cosine similarity of the
two. What the training texts are for is only the scale: how sharply similarity turns into confidence is fitted
on the validation split (one temperature for a label per text, one logistic curve for tags), so the review
threshold means the same as for a trained model. Nothing else is learnt from the examples: a label set that
names its labels well gets a usable classifier from a handful of labelled texts.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import expit, softmax
from sklearn.exceptions import NotFittedError

from core.models.classifiers import ModelSpec, Progress, ProgressCallback, TrainingCancelled, TrainingData
from core.models.embeddings import SentenceEncoderKind

CALIBRATION_FILE = "zero_shot.json"
#: Temperatures tried for a label per text (softmax of similarity / temperature), the one of least validation
#: log-loss kept: cosine similarities of sentence embeddings differ by a few hundredths between labels.
TEMPERATURES = tuple(float(t) for t in np.geomspace(0.005, 1.0, 40))


@dataclass(frozen=True)
class ZeroShotSettings:
    """Zero-shot by label names: nothing to tune but how the names are read."""

    #: How a label's name is put into words before it is embedded ("{label}": the name alone).
    template: str = "{label}"
    #: Temperature when there is no validation split to fit it on.
    default_temperature: float = 0.05
    #: (label, sentence) pairs read with the names: the descriptions people gave the dataset's labels when the
    #: run was created (on the Label page, or ``train --descriptions``), frozen in the run like any setting.
    descriptions: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if "{label}" not in self.template or self.default_temperature <= 0:
            raise ValueError("the template must contain {label} and the temperature must be above 0")
        # a run record keeps them as JSON lists: back to hashable pairs
        object.__setattr__(self, "descriptions", tuple((str(k), str(v)) for k, v in self.descriptions))


def label_words(name: str, template: str, description: str = "") -> str:
    """A label's name as a phrase to embed, followed by its one-sentence description when it has one ("late
    delivery: the parcel came days after the promised date")."""
    words = template.format(label=name.replace("_", " ").replace("-", " ").strip())
    return f"{words}: {description.strip()}" if description.strip() else words


class ZeroShotClassifier(SentenceEncoderKind):
    kind = "zero_shot"
    title = "Zero-shot by label names"
    blurb = ("Each text scored against the label names themselves, learning nothing from the examples (they "
             "only scale its confidence): for labels named in words, before there are many examples.")
    cost_rank = 1
    Settings = ZeroShotSettings
    multi_label_capable = True
    learns_from_examples = False

    def __init__(self, label_names, settings, spec: ModelSpec) -> None:
        super().__init__(label_names, settings, spec)
        self.label_vectors: np.ndarray | None = None
        #: Single-label: softmax(similarity / temperature). Tags: sigmoid(slope · similarity + intercept).
        self.calibration: dict[str, float] = {}
        #: A sentence per label saying what it covers (optional; set before fit): read with the name.
        self.descriptions: dict[str, str] = {}

    @classmethod
    def described(cls, settings: ZeroShotSettings, descriptions: dict[str, str]) -> ZeroShotSettings:
        """The settings with the dataset's label descriptions, unless they carry some already."""
        if settings.descriptions or not descriptions:
            return settings
        return dataclasses.replace(settings, descriptions=tuple(sorted(descriptions.items())))

    def _similarities(self, texts: list[str]) -> np.ndarray:
        return self.encoder.encode(texts) @ self.label_vectors.T

    def fit(self, data: TrainingData, progress: ProgressCallback, stop: threading.Event,
            workdir: Path | None = None) -> "ZeroShotClassifier":
        if stop.is_set():
            raise TrainingCancelled()
        self.targets_for(data)  # a multi-label model gives tags by thresholds (tuned after fit)
        progress(Progress(0, 1, message="placing the label names"))
        self.descriptions = {**self.descriptions, **dict(self.settings.descriptions)}
        self.label_vectors = self.encoder.encode([label_words(n, self.settings.template, self.descriptions.get(n, ""))
                                                  for n in self.label_names])
        total = len(data.validation_texts)

        def on_batch(done: int) -> None:
            if stop.is_set():
                raise TrainingCancelled()
            progress(Progress(done, total, message="embedding validation texts", unit="text"))

        similarity = (self.encoder.encode(data.validation_texts, on_batch) @ self.label_vectors.T
                      if total else np.zeros((0, len(self.label_names))))
        self.calibration = (self._fit_sigmoid(similarity, data.validation_matrix()) if data.multi_label
                            else self._fit_temperature(similarity, np.asarray(data.validation_labels, dtype=int)))
        self.fit_info["calibration"] = dict(self.calibration)
        progress(Progress(1, 1, epoch=1.0, message="fitted"))
        return self

    def _fit_temperature(self, similarity: np.ndarray, truth: np.ndarray) -> dict[str, float]:
        """The temperature of least log-loss on the validation texts (the default without any)."""
        if not len(truth):
            return {"temperature": self.settings.default_temperature}
        rows = np.arange(len(truth))
        losses = [-np.log(softmax(similarity / t, axis=1)[rows, truth] + 1e-12).mean() for t in TEMPERATURES]
        return {"temperature": TEMPERATURES[int(np.argmin(losses))]}

    def _fit_sigmoid(self, similarity: np.ndarray, truth: np.ndarray) -> dict[str, float]:
        """One logistic curve from similarity to "the text has this tag", shared by every tag (Platt scaling)."""
        from sklearn.linear_model import LogisticRegression

        if not len(truth) or truth.min() == truth.max():
            scale = 1.0 / self.settings.default_temperature  # without examples of both kinds: 0.5 similarity is even
            return {"slope": scale, "intercept": -0.5 * scale}
        curve = LogisticRegression(C=100.0).fit(similarity.reshape(-1, 1), truth.reshape(-1))
        return {"slope": float(curve.coef_[0, 0]), "intercept": float(curve.intercept_[0])}

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        if self.label_vectors is None:
            raise NotFittedError("fit or load the model first")
        if not texts:
            return np.zeros((0, len(self.label_names)))
        similarity = self._similarities(texts)
        if "temperature" in self.calibration:
            return softmax(similarity / self.calibration["temperature"], axis=1)
        return expit(self.calibration["slope"] * similarity + self.calibration["intercept"])

    def write_files(self, folder: Path) -> dict[str, Any]:
        path = folder / CALIBRATION_FILE
        path.write_text(json.dumps({"calibration": self.calibration, "template": self.settings.template,
                                    "descriptions": self.descriptions,
                                    "label_vectors": np.round(self.label_vectors, 7).tolist()}), encoding="utf-8")
        return self.saved_file(path)

    @classmethod
    def load(cls, folder: Path, saved: dict[str, Any], spec: ModelSpec) -> "ZeroShotClassifier":
        model, path = cls.restored(folder, saved, spec, CALIBRATION_FILE)  # the file checked before it is read
        stored = json.loads(path.read_text(encoding="utf-8"))
        model.settings = ZeroShotSettings(template=stored["template"],
                                          descriptions=tuple(sorted(stored.get("descriptions", {}).items())))
        model.label_vectors = np.asarray(stored["label_vectors"], dtype=np.float32)
        model.calibration = {k: float(v) for k, v in stored["calibration"].items()}
        model.descriptions = dict(stored.get("descriptions", {}))
        return model
