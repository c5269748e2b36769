"""Users' verdicts on predictions: "correct" or "wrong, it should be …", kept for the next training run."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update

from core.accounts.auth import Actor
from core.data.dataset_versions import DatasetError, DatasetVersion, list_dataset_versions, load_dataset_version
from core.data.ingest import RawTable, records_from_list
from core.serving.publishing import published_run
from core.platform.store import Store, as_utc, feedback, utc_now
from core.data.validate import normalise_text
from core.platform.workspace import Workspace
from core.models.predict import TAG_JOIN


class FeedbackError(ValueError):
    """Feedback that cannot be stored, with why."""


@dataclass(frozen=True)
class FeedbackItem:
    id: int
    time: datetime
    username: str
    run_id: str
    text: str
    predicted: str
    score: float | None
    is_correct: bool
    correct_label: str
    status: str
    reviewed_by: str | None
    reviewed_at: datetime | None

    @classmethod
    def from_row(cls, row: dict) -> "FeedbackItem":
        return cls(row["id"], as_utc(row["time"]), row["username"], row["run_id"], row["text"], row["predicted"],
                   row["score"], bool(row["is_correct"]), row["correct_label"], row["status"], row["reviewed_by"],
                   as_utc(row["reviewed_at"]))


def record_feedback(store: Store, actor: Actor, run_id: str, labels: list[str], text: str, predicted: str,
                    score: float | None, correct_label: str, session_id: str | None = None,
                    tags: bool = False) -> FeedbackItem:
    """Store one verdict; ``correct_label`` equal to ``predicted`` means the prediction was right. For a tagger
    (``tags``) both are tag sets joined by "; " (empty: no tag), each tag one of the model's."""
    if not isinstance(text, str) or not text.strip():
        raise FeedbackError("feedback needs the text that was classified")
    for field, label in (("predicted", predicted), ("correct label", correct_label)):
        for part in ([t for t in label.split(TAG_JOIN) if t] if tags else [label]):
            if part not in labels:
                raise FeedbackError(f"the {field} {part!r} is not one of the model's "
                                    f"{'tags' if tags else 'labels'} ({', '.join(labels)})")
    with store.appending() as connection:
        new_id = insert_feedback(connection, actor, run_id, text, predicted, score, correct_label, session_id)
    return feedback_item(store, new_id)


def insert_feedback(connection, actor: Actor, run_id: str, text: str, predicted: str, score: float | None,
                    correct_label: str, session_id: str | None) -> int:
    """The feedback row itself, inside the caller's transaction (checked by record_feedback or its caller)."""
    return int(connection.execute(insert(feedback).values(
        time=utc_now(), username=actor.username, session_id=session_id, run_id=run_id, text=text,
        predicted=predicted, score=score, is_correct=correct_label == predicted, correct_label=correct_label,
        status="pending")).inserted_primary_key[0])


def feedback_item(store: Store, item_id: int) -> FeedbackItem:
    rows = store.rows(select(feedback).where(feedback.c.id == item_id))
    if not rows:
        raise KeyError(f"no feedback #{item_id}")
    return FeedbackItem.from_row(rows[0])


def feedback_of(store: Store, username: str) -> list[FeedbackItem]:
    """One user's own feedback, newest first."""
    rows = store.rows(select(feedback).where(feedback.c.username == username).order_by(feedback.c.id.desc()))
    return [FeedbackItem.from_row(row) for row in rows]


def list_feedback(store: Store, status: str | None = None) -> list[FeedbackItem]:
    """Everyone's feedback (or one status), newest first."""
    statement = select(feedback).order_by(feedback.c.id.desc())
    if status is not None:
        statement = statement.where(feedback.c.status == status)
    return [FeedbackItem.from_row(row) for row in store.rows(statement)]


def review_feedback(store: Store, actor: Actor, ids: list[int], accept: bool) -> int:
    """Accept or reject feedback items (``actor`` is recorded as the reviewer); returns how many changed."""
    if not ids:
        return 0
    with store.writing() as connection:
        result = connection.execute(update(feedback).where(feedback.c.id.in_(ids)).values(
            status="accepted" if accept else "rejected", reviewed_by=actor.username, reviewed_at=utc_now()))
    return int(result.rowcount)


def accepted_examples(store: Store) -> list[dict[str, str]]:
    """Accepted feedback as labelled examples (``text``, ``label``), the latest verdict per text winning."""
    latest: dict[str, dict[str, str]] = {}
    for item in sorted(list_feedback(store, "accepted"), key=lambda f: f.id):
        latest[normalise_text(item.text)] = {"text": item.text, "label": item.correct_label}
    return list(latest.values())


def examples_new_to(version: DatasetVersion, examples: list[dict[str, str]]) -> list[dict[str, str]]:
    """The examples a model trained on ``version`` has not learned: texts absent from it, or labelled otherwise there."""
    def key(text: str, label: str) -> tuple[str, str]:  # a tag set in any order is the same set
        return normalise_text(text), TAG_JOIN.join(sorted(label.split(TAG_JOIN))) if version.multi_label else label

    known = {key(text, label) for text, label in version.frame()[["text", "label"]].itertuples(index=False)}
    return [e for e in examples if key(e["text"], e["label"]) not in known]


def accepted_jsonl(store: Store) -> str:
    """Accepted feedback in the training format: one ``{"text", "label"}`` object per line."""
    return "".join(json.dumps(example, ensure_ascii=False) + "\n" for example in accepted_examples(store))


def merged_table(version: DatasetVersion, examples: list[dict[str, str]]) -> RawTable:
    """A dataset version's rows followed by accepted feedback, as a table to validate like any upload; a tagged
    version's rows and the feedback's tag sets (joined by "; ") as lists in ``tags``."""
    origin = f"{version.ref} line {{}}"
    if version.multi_label:
        rows = [{"text": text, "tags": list(tags), "origin": origin.format(line)}
                for text, tags, line in version.frame()[["text", "tags", "line"]].itertuples(index=False)]
        rows += [{"text": e["text"], "tags": [t for t in e["label"].split(TAG_JOIN) if t], "origin": "feedback"}
                 for e in examples]
    else:
        rows = [{"text": text, "label": label, "origin": origin.format(line)}
                for text, label, line in version.frame()[["text", "label", "line"]].itertuples(index=False)]
        rows += [{**example, "origin": "feedback"} for example in examples]
    return records_from_list(rows, source=f"{version.ref} + {len(examples)} accepted feedback")


def default_merge_base(workspace: Workspace) -> str | None:
    """The version feedback is merged into by default: the published model's own dataset version (its users'
    corrections belong there), else the newest version; None when nothing is saved."""
    record = published_run(workspace)
    if record is not None:
        try:
            return load_dataset_version(workspace, record.dataset_ref).ref
        except DatasetError:
            pass  # deleted: fall back to the newest version
    versions = list_dataset_versions(workspace)
    return max(versions, key=lambda v: v.meta["created_at"]).ref if versions else None


def merge_target_warning(workspace: Workspace, name: str, base: DatasetVersion, labels: list[str]) -> str | None:
    """Why saving merged data as the next version of ``name`` needs a second look, or None.

    It does when ``name`` is an existing dataset other than the base's (another source) or
    when its latest version has other labels than the merged data.
    """
    try:
        latest = load_dataset_version(workspace, name)
    except DatasetError:
        return None  # a new dataset name: nothing to mix up
    reasons = []
    if latest.name != base.name:
        reasons.append(f"{name} is another dataset than the base {base.ref} (its data came from "
                       f"{latest.meta.get('source', 'elsewhere')})")
    if set(latest.labels) != set(labels):
        added, missing = sorted(set(labels) - set(latest.labels)), sorted(set(latest.labels) - set(labels))
        change = "; ".join(part for part in (f"new: {', '.join(added)}" if added else "",
                                             f"missing: {', '.join(missing)}" if missing else "") if part)
        reasons.append(f"the merged data's labels differ from {latest.ref}'s ({change})")
    return f"Saving as {name}/v{latest.version + 1}: " + " and ".join(reasons) + "." if reasons else None
