"""A finished run's trained model, by run id or run folder: what evaluation and serving load."""

from __future__ import annotations

from pathlib import Path

from core.models.classifiers import ModelSpec, TextClassifier
from core.models.model_kinds import load_saved
from core.platform.config import AppConfig
from core.platform.workspace import Workspace
from core.training.runs import MODEL_DIR, RunError, RunRecord, RunState, load_record, resolve_run, run_folder

def finished_run(workspace: Workspace, run: str | Path) -> tuple[RunRecord, Path]:
    """A finished run's record and model folder, by run id or run folder; RunError if it has no model."""
    workspace, run_id = resolve_run(workspace, run)
    record = load_record(workspace, run_id)
    if record.state is not RunState.SUCCEEDED or not record.model:
        raise RunError(f"run {run_id} has no trained model (state: {record.state.value})")
    return record, run_folder(workspace, run_id) / record.model.get("path", MODEL_DIR)


def load_run_model(workspace: Workspace, run: str | Path, config: AppConfig) -> tuple[TextClassifier, RunRecord]:
    """The trained model of a finished run, by run id or run folder."""
    record, folder = finished_run(workspace, run)
    return load_saved(folder, record.model, ModelSpec.of(config), f"run {record.run_id}"), record
