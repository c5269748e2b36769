"""The review queue: people with the right role label what the model was unsure about (or a sample of what it
was sure about); each label becomes a correction for the feedback review."""

from __future__ import annotations

from core.accounts.audit import EventType
from core.accounts.auth import Permission
from core.serving.feedback import FeedbackError
from core.serving.review_queue import (
    QueuedItem, expire_old, item, label_as_correction, labelled_texts, queue_figures, ranked,
)
from core.training.runs import RunError, load_record
from core.services.studio import Caller, Studio
from core.models.predict import TAG_JOIN


def queue(studio: Studio, caller: Caller, limit: int = 200) -> list[QueuedItem]:
    """The open items, most instructive first (texts past their time are deleted first)."""
    caller.require(Permission.LABEL_QUEUE)
    expire_old(studio.store, studio.config.review)
    return ranked(studio.store, studio.config.review, studio.config.model, limit)


def label_item(studio: Studio, caller: Caller, item_id: int, label: str) -> bool:
    """Give a queued text its label (a tagger's: its tags joined by "; "): a correction for the feedback review
    (and the item closed). False when it was labelled by someone else first or has expired."""
    actor = caller.require(Permission.LABEL_QUEUE)
    queued = item(studio.store, item_id)
    if queued is None:
        return False
    try:
        record = load_record(studio.workspace, queued.run_id)
    except (RunError, OSError) as error:
        raise FeedbackError(f"the run that made this prediction is gone ({error})") from None
    tags = (record.model or {}).get("task") == "multi-label"  # a tagger's label: its tags joined by "; "
    for part in ([t for t in label.split(TAG_JOIN) if t] if tags else [label]):
        if part not in record.labels:
            raise FeedbackError(f"{part!r} is not one of the model's {'tags' if tags else 'labels'} "
                                f"({', '.join(record.labels)})")
    correction = label_as_correction(studio.store, queued, label, actor, caller.session_id)
    if correction is None:
        return False
    studio.audit(caller, EventType.QUEUE_LABELLED, item=item_id, run=queued.run_id, feedback_id=correction,
                 agreed=label == queued.predicted)
    return True


def figures(studio: Studio, caller: Caller) -> dict:
    """How the queue is doing: open, labelled, agreement with the model, confident mistakes found, and how the
    published model does on the texts labelled while an earlier model was serving (did it learn from them?)."""
    caller.require(Permission.VIEW_LOGS)
    shown = queue_figures(studio.store)
    loaded = studio.published.current()
    earlier = [] if loaded is None else labelled_texts(studio.store, other_than=loaded[1].run_id)
    shown["next_model_texts"] = len(earlier)

    def accuracy() -> float:
        predicted = loaded[0].predict([text for text, _ in earlier])
        return sum(p.label == label for p, (_, label) in zip(predicted, earlier)) / len(earlier)

    # one model pass per model and set of labelled texts, not per Admin page run
    shown["next_model_accuracy"] = (studio.remembered(("next model", loaded[1].run_id, tuple(earlier)), accuracy)
                                    if earlier else None)
    return shown
