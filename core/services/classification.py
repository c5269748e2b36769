"""Classifying with the published model, and users saying a prediction was wrong."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from core.accounts.audit import EventType
from core.serving.monitoring import record_predictions
from core.accounts.auth import Permission
from core.evaluation.scoring import EvaluationError
from core.models.explain import Explanation
from core.serving.feedback import FeedbackError, FeedbackItem, feedback_of, record_feedback
from core.serving.review_queue import enqueue, to_queue
from core.models.predict import TAG_JOIN, Prediction, Predictor
from core.experiments.reports import run_evaluation
from core.serving.publishing import publication_history
from core.training.runs import RunError, RunRecord, load_record
from core.serving.runtime import ReviewThreshold, predictor_for_run, serving_model, suggested_threshold
from core.services.studio import Caller, Studio


class NothingPublished(LookupError):
    """No model is published yet."""

    def __init__(self) -> None:
        super().__init__("no model is published yet; an analyst publishes one on the Evaluate page")


@dataclass(frozen=True)
class Classified:
    """What a classification gave: the run that made it, the threshold applied, one prediction per text."""

    record: RunRecord
    threshold: float
    predictions: list[Prediction]


def serving_run(studio: Studio, caller: Caller) -> RunRecord | None:
    """The run that classifies now (its model loaded), or None while nothing is published."""
    caller.require(Permission.CLASSIFY)
    loaded = studio.published.current()
    return loaded[1] if loaded is not None else None


def review_threshold(studio: Studio, record: RunRecord) -> ReviewThreshold:
    """The run's suggested review threshold (from its stored test scores), or the configured one; worked out
    once per run and settings (the API and the CLI ask on every request)."""
    def work_out() -> ReviewThreshold:
        try:
            evaluation = run_evaluation(studio.workspace, record, studio.config)
        except (EvaluationError, OSError):
            evaluation = None
        return suggested_threshold(evaluation, studio.config.classify)

    return studio.remembered(("threshold", record.run_id, repr(studio.config.classify)), work_out)


def _model(studio: Studio, caller: Caller, run: str | None) -> tuple[Predictor, RunRecord]:
    """The published model, or (for whoever may evaluate runs) any finished run's."""
    if run is not None:
        caller.require(Permission.EVALUATE)
        return predictor_for_run(studio.workspace, run, studio.config)
    loaded = studio.published.current()
    if loaded is None:
        raise NothingPublished()
    return loaded


def classify(studio: Studio, caller: Caller, texts: Sequence[Any], threshold: float | None = None,
             file_name: str | None = None, progress: Callable[[int, int], None] | None = None,
             run: str | None = None) -> Classified:
    """Score texts with the published model (or ``run``), flag those below the threshold (the run's suggested
    one unless given), and log them: prediction rows for monitoring and one audit event.

    One text without ``file_name`` is logged as a single classification, anything else as a batch.
    """
    actor = caller.require(Permission.CLASSIFY)
    predictor, record = _model(studio, caller, run)
    if threshold is None:
        threshold = review_threshold(studio, record).value
    if caller.channel == "api" and run is None and studio.config.api.micro_batching:
        scored = studio.published.batched()[0].predict(texts)  # concurrent calls share a model pass
    else:
        scored = predictor.predict(list(texts), progress)
    judged = [prediction.at_threshold(threshold) for prediction in scored]
    single = file_name is None and len(judged) == 1
    record_predictions(studio.store, actor, caller.session_id, record.run_id, zip(texts, judged),
                       "single" if single else "batch", studio.config.storage.store_prediction_texts)
    if run is None and studio.config.review.enabled:  # what the published model classifies feeds the queue
        enqueue(studio.store, record.run_id, actor.username, to_queue(zip(texts, judged), studio.config.review),
                studio.config.review)
    if single:
        studio.audit(caller, EventType.CLASSIFIED_TEXT, run=record.run_id, label=judged[0].label,
                     status=judged[0].status)
    else:
        studio.audit(caller, EventType.CLASSIFIED_FILE, run=record.run_id, file=file_name or "(texts)",
                     rows=len(judged), needs_review=sum(p.needs_review for p in judged),
                     not_scored=sum(p.status != "ok" for p in judged))
    return Classified(record, threshold, judged)


def give_feedback(studio: Studio, caller: Caller, record: RunRecord, text: str, predicted: str,
                  score: float | None, correct_label: str) -> FeedbackItem:
    """Store a user's verdict on one prediction of ``record`` ("right", or what it should have been)."""
    caller.require(Permission.GIVE_FEEDBACK)
    item = record_feedback(studio.store, caller.actor, record.run_id, record.labels, text, predicted, score,
                           correct_label, caller.session_id, tags=(record.model or {}).get("task") == "multi-label")
    studio.audit(caller, EventType.FEEDBACK_GIVEN, run=record.run_id, feedback_id=item.id, correct=item.is_correct)
    return item


class UnknownModel(LookupError):
    """Feedback named a run that never classified (not the published model nor an earlier one)."""


def model_that_classified(studio: Studio, caller: Caller, run_id: str | None) -> RunRecord:
    """The run a verdict is about: the published one (``run_id`` None) or one published before (feedback can
    come late); NothingPublished or UnknownModel, in words, otherwise."""
    caller.require(Permission.GIVE_FEEDBACK)
    if run_id is None:
        record = serving_run(studio, caller)
        if record is None:
            raise NothingPublished()
        return record
    if run_id not in {p.run_id for p in publication_history(studio.workspace)}:
        raise UnknownModel(f"no published model {run_id!r} (feedback is for models that classified, the current "
                           "one or an earlier one)")
    try:
        return load_record(studio.workspace, run_id)
    except (RunError, OSError):
        raise UnknownModel(f"no run {run_id!r}") from None


def my_feedback(studio: Studio, caller: Caller) -> list[FeedbackItem]:
    """The verdicts the caller gave, newest first, with how each was reviewed."""
    actor = caller.require(Permission.GIVE_FEEDBACK)
    return feedback_of(studio.store, actor.username)


def explain_text(studio: Studio, caller: Caller, text: str, tag: str | None = None) -> Explanation:
    """The words that pushed the published model's prediction for ``text`` towards its label and away from the
    runner-up, or (a tagger, ``tag``) raised that tag's score (computed on demand; nothing is logged or stored)."""
    caller.require(Permission.CLASSIFY)
    loaded = studio.published.current_model()
    if loaded is None:
        raise NothingPublished()
    return loaded[0].explain(text) if tag is None else loaded[0].explain_tag(text, tag)


def explain_with_run(studio: Studio, caller: Caller, run_id: str, text: str) -> Explanation:
    """The same for any finished run (the Evaluate page's mistakes), for whoever may evaluate runs."""
    caller.require(Permission.EVALUATE)
    model, _ = serving_model(studio.workspace, run_id, studio.config)
    return model.explain(text)


__all__ = ["TAG_JOIN", "Classified", "FeedbackError", "FeedbackItem", "NothingPublished", "Prediction", "UnknownModel",
           "classify",
           "explain_text", "explain_with_run", "give_feedback", "model_that_classified", "my_feedback",
           "review_threshold", "serving_run"]
