"""Label a few, well: the labelling queue as use cases, each with its role check and audit event.

On a version whose texts are labelled in part (labels from topics, texts left without one), the queue asks a
person about the texts whose labels teach the model most (core.models.active_learning), each shown with the
current model's guess: the newest finished run on this dataset's versions with the same labels, or, before any
training, zero-shot by the label names (core.models.zero_shot). Answers are kept at once
(core.data.person_labels); every ``labelling.retrain_every`` labels they are saved as the next version and a
``labelling.retrain_kind`` model is trained on it in the background, and the learning curve (validation
macro-F1 against the labels people gave) says when more labels stop helping.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.accounts.audit import EventType
from core.accounts.auth import Permission
from core.data.dataset_versions import DatasetError, DatasetVersion, list_dataset_versions, load_dataset_version
from core.data.person_labels import (
    MAX_DESCRIPTION, MAX_LABEL, add_label, added_labels, given_labels, give_labels, label_descriptions,
    labels_to_give, open_rows, save_label_descriptions, save_person_labels,
)
from core.models.active_learning import propose
from core.models.classifiers import ModelSpec, TextClassifier, TrainingData
from core.models.embeddings import shared_encoder
from core.models.model_kinds import model_kinds
from core.models.zero_shot import ZeroShotClassifier, ZeroShotSettings
from core.services.studio import Caller, Studio
from core.training.finished import load_run_model
from core.training.runs import RunRecord, RunRequest, RunState, list_runs

__all__ = ["MAX_DESCRIPTION", "MAX_LABEL", "CurvePoint", "Guesser", "LabelsKept", "Proposal", "describe_labels",
           "descriptions", "label_texts", "labelling_versions", "labels_offered", "learning_curve",
           "more_labels_verdict", "new_label", "next_batch", "retraining", "save_and_retrain", "waiting"]

ZERO_SHOT_NAME = "Zero-shot by the label names (no model trained yet)"
ZERO_SHOT_DESCRIBED = "Zero-shot by the label names and their descriptions (no model trained yet)"


@dataclass(frozen=True)
class Proposal:
    """A text to label: its line, the model's guess and confidence, and the label it has now (from a topic)."""

    line: int
    text: str
    guess: str
    score: float
    current: str | None


@dataclass(frozen=True)
class Guesser:
    """The model whose guesses the queue shows: a run (its id) or zero-shot by the label names (None), and the
    labels it guesses among (zero-shot: with those people added while labelling)."""

    name: str
    run_id: str | None
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class LabelsKept:
    """What labelling a batch did: labels kept, labels waiting on the version, and the next version and the
    run training on it when the batch made ``retrain_every``."""

    given: int
    waiting: int
    saved: DatasetVersion | None = None
    run: RunRecord | None = None


@dataclass(frozen=True)
class CurvePoint:
    """One trained run on the learning curve."""

    kind: str
    title: str
    people_labels: int
    macro_f1: float
    run_name: str


def labelling_versions(studio: Studio, caller: Caller) -> list[DatasetVersion]:
    """The versions with texts no person has labelled yet: labels from topics, or texts left without one."""
    caller.require(Permission.MANAGE_DATA)
    return [v for v in list_dataset_versions(studio.workspace)
            if not v.unlabelled and not v.multi_label and "label_sources" in v.meta and len(open_rows(v))]


def _of_dataset(record: RunRecord, name: str) -> bool:
    return record.dataset_ref.rsplit("/v", 1)[0] == name


def retraining(studio: Studio, caller: Caller, version_ref: str) -> list[RunRecord]:
    """Runs queued or training on any version of this version's dataset."""
    caller.require(Permission.MANAGE_DATA)
    name = version_ref.rsplit("/v", 1)[0]
    return [record for record in studio.jobs.active() if _of_dataset(record, name)]


def _runs_on(studio: Studio, version: DatasetVersion) -> list[RunRecord]:
    """Finished runs on any version of this dataset with the same labels, newest first."""
    return sorted((r for r in list_runs(studio.workspace)
                   if r.state is RunState.SUCCEEDED and _of_dataset(r, version.name)
                   and r.labels == version.labels and (r.model or {}).get("task") != "multi-label"),
                  key=lambda r: r.created_at, reverse=True)


def _zero_shot(studio: Studio, version: DatasetVersion) -> ZeroShotClassifier:
    """Zero-shot by the label names (and the sentences people wrote about them; with the labels added while
    labelling), its confidence scaled on the version's validation texts."""
    validation = version.split_frame("validation")
    model = ZeroShotClassifier(labels_to_give(studio.workspace, version), ZeroShotSettings(),
                               ModelSpec.of(studio.config))
    model.descriptions = label_descriptions(studio.workspace, version.name)
    data = TrainingData(model.label_names, [], [], validation["text"].tolist(),
                        validation["label_id"].astype(int).tolist())
    return model.fit(data, lambda progress: None, threading.Event())


def _guesser(studio: Studio, version: DatasetVersion, runs: list[RunRecord]) -> tuple[Guesser, TextClassifier]:
    """The newest of ``runs`` (this dataset's finished runs, newest first), else zero-shot by the label names."""
    if runs:
        model, record = load_run_model(studio.workspace, runs[0].run_id, studio.config)
        return Guesser(record.name, record.run_id, tuple(model.label_names)), model
    model = _zero_shot(studio, version)
    return Guesser(ZERO_SHOT_DESCRIBED if model.descriptions else ZERO_SHOT_NAME, None, tuple(model.label_names)), model


def _candidates(version: DatasetVersion, most: int, seed: int, answered: frozenset[int]) -> pd.DataFrame:
    """The open rows the queue chooses from (those not ``answered``): all of them, or a random ``most`` (the
    same for a version), so a page scores a few thousand texts, not 200,000."""
    rows = open_rows(version)
    rows = rows[~rows["line"].astype(int).isin(answered)]
    return rows if len(rows) <= most else rows.sample(most, random_state=seed).sort_index()


def _scored(studio: Studio, version: DatasetVersion, answered: frozenset[int] = frozenset()
            ) -> tuple[Guesser, dict[int, int], np.ndarray, np.ndarray]:
    """The current model's scores and the sentence embeddings of the version's candidate texts (row by line),
    once per version, model and set of texts answered before the candidates were drawn."""
    runs = _runs_on(studio, version)
    described = tuple(sorted(label_descriptions(studio.workspace, version.name).items())) if not runs else ()
    added = tuple(added_labels(studio.workspace, version))
    key = ("labelling", version.ref, runs[0].run_id if runs else None, answered, described, added)

    def score() -> tuple[Guesser, dict[int, int], np.ndarray, np.ndarray]:
        rows = _candidates(version, studio.config.labelling.candidates, studio.config.training.seed, answered)
        texts = rows["text"].astype(str).tolist()
        guesser, model = _guesser(studio, version, runs)
        vectors = shared_encoder(studio.config.model.name, studio.config.model.max_length).encode(texts)
        return (guesser, {int(line): i for i, line in enumerate(rows["line"])}, model.predict_proba(texts), vectors)

    return studio.remembered(key, score)


def next_batch(studio: Studio, caller: Caller, version_ref: str) -> tuple[Guesser, list[Proposal]]:
    """The texts to label next, most instructive first, each with the current model's guess."""
    caller.require(Permission.MANAGE_DATA)
    version = load_dataset_version(studio.workspace, version_ref)
    answered = given_labels(studio.workspace, version)
    guesser, row_of, probabilities, vectors = _scored(studio, version)
    waiting_lines = [line for line in row_of if line not in answered]
    if not waiting_lines:  # every candidate answered: draw them again from the texts still open
        guesser, row_of, probabilities, vectors = _scored(studio, version, frozenset(answered))
        waiting_lines = list(row_of)
    if not waiting_lines:
        return guesser, []
    rows = open_rows(version)
    index = [row_of[line] for line in waiting_lines]
    settings = studio.config.labelling
    picked = propose(probabilities[index], vectors[index], settings.batch, settings.pool_factor,
                     studio.config.training.seed)
    texts, current = rows.set_index("line")["text"], rows.set_index("line")["label"]
    batch = []
    for i in picked:
        line, scores = waiting_lines[i], probabilities[index[i]]
        best = int(np.argmax(scores))
        now = current[line]
        batch.append(Proposal(line, str(texts[line]), guesser.labels[best], float(scores[best]),
                              None if not isinstance(now, str) else now))
    return guesser, batch


def descriptions(studio: Studio, caller: Caller, version_ref: str) -> dict[str, str]:
    """The sentences people wrote about the labels of this version's dataset (label → sentence)."""
    caller.require(Permission.MANAGE_DATA)
    return label_descriptions(studio.workspace, version_ref.rsplit("/v", 1)[0])


def describe_labels(studio: Studio, caller: Caller, version_ref: str, written: dict[str, str]) -> dict[str, str]:
    """Keep a sentence per label saying what it covers (empty: none); zero-shot guesses read them with the names
    until a model is trained. What is kept now."""
    caller.require(Permission.MANAGE_DATA)
    version = load_dataset_version(studio.workspace, version_ref)
    kept = save_label_descriptions(studio.workspace, version, written)
    studio.audit(caller, EventType.LABELS_DESCRIBED, dataset=version.name, labels=len(kept))
    return kept


def labels_offered(studio: Studio, caller: Caller, version_ref: str) -> list[str]:
    """The labels a person may give on this version: its own, then those added while labelling it."""
    caller.require(Permission.MANAGE_DATA)
    return labels_to_give(studio.workspace, load_dataset_version(studio.workspace, version_ref))


def new_label(studio: Studio, caller: Caller, version_ref: str, name: str) -> list[str]:
    """Add a label for texts that fit none (DatasetError, in words, for an empty name or one already there);
    it is offered at once, guessed by zero-shot until a model is trained with it, and joins the next version's
    label set once a text has it. The labels offered now."""
    caller.require(Permission.MANAGE_DATA)
    version = load_dataset_version(studio.workspace, version_ref)
    offered = add_label(studio.workspace, version, name)
    studio.audit(caller, EventType.LABEL_ADDED, dataset=version.ref, label=offered[-1])
    return offered


def waiting(studio: Studio, caller: Caller, version_ref: str) -> tuple[int, int]:
    """Labels given on the version and not saved yet, and texts no person has labelled or skipped."""
    caller.require(Permission.MANAGE_DATA)
    version = load_dataset_version(studio.workspace, version_ref)
    answered = given_labels(studio.workspace, version)
    open_lines = set(open_rows(version)["line"].astype(int))
    return sum(a.label is not None for a in answered.values()), len(open_lines - set(answered))


def label_texts(studio: Studio, caller: Caller, version_ref: str, answers: dict[int, str | None]) -> LabelsKept:
    """Keep a batch of answers (line → label, None to skip); at ``retrain_every`` labels, save them as the next
    version and train the retrain kind on it in the background."""
    actor = caller.require(Permission.MANAGE_DATA)
    version = load_dataset_version(studio.workspace, version_ref)
    given = give_labels(studio.workspace, version, answers, actor.username)
    studio.audit(caller, EventType.LABELS_GIVEN, dataset=version.ref, labels=given, skipped=len(answers) - given)
    kept, _ = waiting(studio, caller, version_ref)
    if kept < studio.config.labelling.retrain_every:
        return LabelsKept(given, kept)
    saved, run = save_and_retrain(studio, caller, version_ref)
    return LabelsKept(given, 0, saved, run)


def save_and_retrain(studio: Studio, caller: Caller, version_ref: str) -> tuple[DatasetVersion, RunRecord]:
    """Save the labels given on the version as its next version, and queue the retrain kind on it."""
    actor = caller.require(Permission.MANAGE_DATA)
    caller.require(Permission.TRAIN)
    version = load_dataset_version(studio.workspace, version_ref)
    saved = save_person_labels(studio.workspace, version, actor.username)
    studio.audit(caller, EventType.DATASET_SAVED, dataset=saved.ref, rows=saved.meta["rows"], source=version.ref,
                 labels=len(saved.labels), from_queue=saved.meta["from_queue"]["labelled"],
                 unlabelled=saved.meta["unlabelled_rows"])
    kind = studio.config.labelling.retrain_kind
    record = studio.jobs.submit(RunRequest(saved.ref, kind, studio.config.training.preset,
                                           model_kinds()[kind].Settings()), actor)
    studio.audit(caller, EventType.TRAINING_STARTED, run=record.run_id, model=record.kind, dataset=record.dataset_ref,
                 preset=record.preset)
    return saved, record


def learning_curve(studio: Studio, caller: Caller, version_ref: str) -> list[CurvePoint]:
    """Validation macro-F1 of the runs on this dataset's versions against the labels people had given (by kind,
    fewest labels first)."""
    caller.require(Permission.MANAGE_DATA)
    version = load_dataset_version(studio.workspace, version_ref)
    points = []
    for record in _runs_on(studio, version):
        f1 = (record.validation_metrics or {}).get("macro_f1")
        try:
            labels = load_dataset_version(studio.workspace, record.dataset_ref).meta.get("people_labels", 0)
        except DatasetError:
            continue  # its version was deleted
        if f1 is not None:
            points.append(CurvePoint(record.kind, record.title, int(labels), float(f1), record.name))
    return sorted(points, key=lambda p: (p.kind, p.people_labels, p.run_name))


def more_labels_verdict(points: list[CurvePoint], kind: str, stop_gain: float) -> str | None:
    """Whether the last labels still helped the retrained kind, in words (None before it was trained twice)."""
    mine = [p for p in points if p.kind == kind]
    if len(mine) < 2:
        return None
    before, last = mine[-2], mine[-1]
    gain, more = last.macro_f1 - before.macro_f1, last.people_labels - before.people_labels
    moved = (f"The last {more} labels moved {last.title}'s validation macro-F1 by {gain:+.3f} "
             f"({before.macro_f1:.3f} → {last.macro_f1:.3f})")
    if gain < stop_gain:
        return (f"{moved}: more labels have stopped helping much. Train the final models on the Train page, or "
                f"label texts the model gets wrong in use (the review queue).")
    return f"{moved}: more labels still help."
