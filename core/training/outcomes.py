"""How a run ended, told to the audit log: one event per finished, cancelled or failed run."""

from __future__ import annotations

import logging

from core.accounts.audit import EventType, record_event
from core.platform.store import Store
from core.training.runs import RunRecord, RunState

log = logging.getLogger(__name__)

RUN_OUTCOME_EVENTS = {RunState.SUCCEEDED: EventType.TRAINING_FINISHED, RunState.CANCELLED: EventType.TRAINING_CANCELLED,
                      RunState.FAILED: EventType.TRAINING_FAILED}


def record_run_outcome(store: Store, record: RunRecord) -> None:
    """The training thread's report of how a run ended, credited to whoever started it."""
    event = RUN_OUTCOME_EVENTS.get(record.state)
    if event is None:
        return
    details = {"run": record.run_id, "model": record.kind, "dataset": record.dataset_ref}
    if record.state is RunState.SUCCEEDED:
        details["test_macro_f1"] = (record.test_metrics or {}).get("macro_f1")
        details["train_seconds"] = record.durations.get("train_s")
    if record.error:
        details["error"] = record.error
    if record.cancelled_by:
        details["cancelled_by"] = record.cancelled_by
    record_event(store, event, username=record.cancelled_by or record.created_by, **details)
    log.info("run %s %s", record.run_id, record.state.value)
