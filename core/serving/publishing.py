"""Which run the Classify page uses: publish, restore the previous one, remember who and when.

The state is one JSON file (``models/published.json``) holding the current
publication and the history, replaced atomically under a file lock; a run
folder is never modified once finished, so switching the pointer switches the
model in one step and a reader sees either the old or the new model.
"""

from __future__ import annotations

import fcntl
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

from core.accounts.auth import Actor
from core.training.runs import RunError, RunRecord, RunState, load_record, now_iso, run_folder
from core.platform.workspace import Workspace, read_json, remove_folder_atomic, write_json_atomic

STATE_FILE = "published.json"
LOCK_FILE = ".published.lock"


class PublishError(ValueError):
    """A run that cannot be published, or nothing to restore."""


@dataclass(frozen=True)
class Publication:
    """One act of publishing: which run, by whom, when, and what it replaced."""

    run_id: str
    published_by: str
    published_at: str
    replaced: str | None = None
    action: str = "publish"  # publish | restore


@contextmanager
def _locked(workspace: Workspace) -> Iterator[None]:
    """Serialise read-modify-write of the publication state across threads and processes."""
    workspace.models.mkdir(parents=True, exist_ok=True)
    with open(workspace.models / LOCK_FILE, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _state_path(workspace: Workspace) -> Path:
    return workspace.models / STATE_FILE


def _read_state(workspace: Workspace) -> dict[str, Any]:
    path = _state_path(workspace)
    return read_json(path) if path.exists() else {"current": None, "history": []}


def publication_history(workspace: Workspace) -> list[Publication]:
    """Every publish and restore, oldest first."""
    return [Publication(**entry) for entry in _read_state(workspace)["history"]]


def current_publication(workspace: Workspace) -> Publication | None:
    state = _read_state(workspace)
    return Publication(**state["current"]) if state["current"] else None


def _publishable(workspace: Workspace, run_id: str) -> RunRecord:
    try:
        record = load_record(workspace, run_id)
    except (RunError, FileNotFoundError) as exc:
        raise PublishError(f"no run {run_id!r} in this workspace") from exc
    if record.state is not RunState.SUCCEEDED or not record.model:
        raise PublishError(f"run {run_id} has no trained model (state: {record.state.value}); only finished "
                           "runs can be published")
    return record


def _switch(workspace: Workspace, run_id: str, by: str, action: str) -> Publication:
    state = _read_state(workspace)
    current = state["current"]
    publication = Publication(run_id, by, now_iso(), current["run_id"] if current else None, action)
    state["current"] = asdict(publication)
    state["history"].append(asdict(publication))
    write_json_atomic(_state_path(workspace), state)
    return publication


def publish(workspace: Workspace, run_id: str, actor: Actor) -> Publication:
    """Make ``run_id`` the model used for classification (``actor`` recorded as who published it); the one
    it replaces is remembered."""
    _publishable(workspace, run_id)
    with _locked(workspace):
        current = current_publication(workspace)
        if current is not None and current.run_id == run_id:
            raise PublishError(f"run {run_id} is already the published model")
        return _switch(workspace, run_id, actor.username, "publish")


def restore_previous(workspace: Workspace, actor: Actor) -> Publication:
    """Publish again the run the current one replaced (one click undo)."""
    with _locked(workspace):
        current = current_publication(workspace)
        if current is None or current.replaced is None:
            raise PublishError("there is no previously published model to restore")
        _publishable(workspace, current.replaced)
        return _switch(workspace, current.replaced, actor.username, "restore")


def published_run(workspace: Workspace) -> RunRecord | None:
    """The run behind the current publication, or None when nothing is published."""
    current = current_publication(workspace)
    return load_record(workspace, current.run_id) if current else None


@dataclass(frozen=True)
class PublishCheck:
    """What publishing a run would change, in words, and whether it scores lower than the model it replaces."""

    message: str
    worse: bool


def _scores(record: RunRecord) -> str:
    metrics = record.test_metrics or {}
    if "micro_f1" in metrics:  # a tagger's
        return f"test micro-F1 {metrics['micro_f1']:.3f}, macro-F1 {metrics['macro_f1']:.3f}"
    if "macro_f1" not in metrics:
        return "no test scores"
    return f"test macro-F1 {metrics['macro_f1']:.3f}, accuracy {metrics['accuracy']:.3f}"


def compare_with_published(workspace: Workspace, candidate: RunRecord) -> PublishCheck:
    """The candidate's and the published run's test scores side by side, or why they cannot be compared."""
    current = published_run(workspace)
    if current is None:
        return PublishCheck(f"{candidate.name} ({_scores(candidate)}) becomes the first published model.", False)
    if current.split_fingerprint != candidate.split_fingerprint:
        return PublishCheck(
            f"{candidate.name} ({_scores(candidate)}) replaces {current.name} ({_scores(current)}). They were tested "
            "on different test splits, so these scores cannot be compared: evaluate both on one labelled file "
            "first if in doubt.", False)
    new, old = (r.test_metrics or {} for r in (candidate, current))
    worse = "macro_f1" in new and "macro_f1" in old and new["macro_f1"] < old["macro_f1"]
    verdict = (f" It scores LOWER than the model it replaces, by {old['macro_f1'] - new['macro_f1']:.3f} macro-F1."
               if worse else "")
    return PublishCheck(f"On the same test split: {candidate.name} ({_scores(candidate)}) replaces {current.name} "
                        f"({_scores(current)}).{verdict}", worse)


def delete_run(workspace: Workspace, run_id: str) -> None:
    """Delete a finished run and its files, in one step; the published model and runs still training stay."""
    record = load_record(workspace, run_id)
    if not record.state.finished:
        raise RunError(f"{record.name} is {record.state.value}: cancel it first")
    publication = current_publication(workspace)
    if publication is not None and publication.run_id == run_id:
        raise RunError(f"{record.name} is the published model: publish another run (or restore the previous "
                       "one) first")
    remove_folder_atomic(workspace, run_folder(workspace, run_id))


def run_deletion_warning(workspace: Workspace, run_id: str) -> str | None:
    """What deleting a run would change, in words: the model 'Restore the previous model' goes back to."""
    publication = current_publication(workspace)
    if publication is not None and publication.replaced == run_id:
        return ("It is the model 'Restore the previous model' would go back to; that button then has nothing "
                "to restore.")
    return None
