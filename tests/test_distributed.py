"""Training under torchrun: rank 0 ingests, records, tests and saves; every process trains the one run."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from core.platform import distributed
from core.platform.config import CONFIG_ENV_VAR, WORKSPACE_ENV_VAR, AppConfig, load_config
from core.data.dataset_versions import list_dataset_versions
from core.training.runs import RunRecord, RunRequest, RunState, create_run, list_runs, run_folder
from core.platform.workspace import Workspace
from tests.conftest import ANALYST, PROJECT_ROOT, save_demo_version
from tests.test_cli import labelled_rows

#: Two processes on the CPU (gloo) each get one thread, so they do not fight over the cores.
TORCHRUN_ENV = {"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
#: A run of the tiny model takes seconds; a hang would take the whole limit.
TORCHRUN_TIMEOUT_S = 240


def torchrun(workspace: Workspace, config_path: Path | None, *args: str) -> subprocess.CompletedProcess:
    """``python -m core ARGS`` in two processes under torchrun, on the CPU, with the test's workspace."""
    env = {k: v for k, v in os.environ.items() if k not in (CONFIG_ENV_VAR, "CUDA_VISIBLE_DEVICES")}
    env.update(TORCHRUN_ENV, **{WORKSPACE_ENV_VAR: str(workspace.root), "CUDA_VISIBLE_DEVICES": ""})
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "core", *args] + (["--config", str(config_path)] if config_path else [])
    return subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                          timeout=TORCHRUN_TIMEOUT_S)


@pytest.fixture
def tiny_settings(tmp_path: Path, tiny_bert: Path) -> Path:
    """A settings file for the tiny random BERT: a few fixed quick steps, one thread per process."""
    path = tmp_path / "settings.toml"
    path.write_text(f"""
[model]
name = "{tiny_bert}"
max_length = 32
[training]
cpu_threads = 1
[training.quick]
epochs = 2
batch_size = 8
learning_rate = 1e-3
early_stopping_patience = 2
""", encoding="utf-8")
    return path


def assert_trained_by_two(workspace: Workspace, record: RunRecord) -> None:
    """One succeeded run with its model, no checkpoints left, trained by two processes."""
    assert record.state is RunState.SUCCEEDED, record.error
    folder = run_folder(workspace, record.run_id)
    assert (folder / "model").is_dir() and not (folder / "checkpoints").exists()
    assert record.fit_info["world_size"] == 2
    assert record.test_metrics and record.step == record.total_steps > 0


@pytest.mark.slow
def test_torchrun_train_makes_one_dataset_and_one_run_trained_by_both(isolated_workspace, tiny_settings,
                                                                        write_file):
    data = write_file("small.jsonl", "\n".join(json.dumps(r) for r in labelled_rows()) + "\n")
    result = torchrun(isolated_workspace, tiny_settings, "train", "--data", str(data), "--models", "transformer",
                      "--preset", "quick")
    assert result.returncode == 0, result.stderr[-3000:]
    assert [v.ref for v in list_dataset_versions(isolated_workspace)] == ["small/v1"]
    runs = list_runs(isolated_workspace)
    assert len(runs) == 1
    assert_trained_by_two(isolated_workspace, runs[0])
    printed = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [(p["run_id"], p["state"]) for p in printed] == [(runs[0].run_id, "succeeded")]  # rank 0 alone prints


@pytest.mark.slow
def test_torchrun_train_run_trains_a_queued_run_in_two_processes(isolated_workspace, tiny_settings,
                                                                  monkeypatch):
    monkeypatch.setenv(CONFIG_ENV_VAR, str(tiny_settings))
    config = load_config()
    version = save_demo_version(isolated_workspace, config, max_rows=120)
    # one epoch planned, a budget for more: both processes plan again and must stop at the same epoch
    settings = dataclasses.replace(config.training.hyperparameters("quick"), epochs=1.0, budget_s=3600.0,
                                   max_epochs=2.0)
    queued = create_run(isolated_workspace, RunRequest(version.ref, "transformer", "quick", settings), config,
                        ANALYST)
    result = torchrun(isolated_workspace, tiny_settings, "train-run", queued.run_id)
    assert result.returncode == 0, result.stderr[-3000:]
    [record] = list_runs(isolated_workspace)
    assert record.run_id == queued.run_id
    assert_trained_by_two(isolated_workspace, record)
    assert record.fit_info["epoch_plan"]["epochs_after_replanning"] == 2 == round(record.fit_info["epochs_run"])


@pytest.mark.slow
def test_when_rank_0_cannot_ingest_the_others_exit_with_its_status_instead_of_waiting(isolated_workspace,
                                                                                        tmp_path):
    result = torchrun(isolated_workspace, None, "train", "--data", str(tmp_path / "missing.jsonl"),
                      "--models", "transformer")
    assert result.returncode != 0
    assert "rank 1: the main process (rank 0) stopped with exit status 2" in result.stderr
    assert not list_dataset_versions(isolated_workspace) and not list_runs(isolated_workspace)


def test_without_a_launcher_this_process_is_the_only_one(monkeypatch):
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert (distributed.rank(), distributed.world_size(), distributed.is_main(), distributed.is_distributed()) == (
        0, 1, True, False)
    assert distributed.share_from_main("mine") == "mine"
    with distributed.process_group(), distributed.all_ranks():
        pass


def test_a_rank_other_than_0_never_executes_a_run(monkeypatch, isolated_workspace):
    from core.training.runs import RunError
    from core.training.execution import execute_run

    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(RunError, match="only rank 0"):
        execute_run(isolated_workspace, None, AppConfig(), threading.Event())  # refused before the handle is read
    assert not list_runs(isolated_workspace)


def test_the_launch_command_runs_train_run_under_torchrun_with_the_configuration():
    command = distributed.launch_command("20260101-000000-transformer-abc123", 2, "/etc/studio.toml")
    assert command[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert command[command.index("--nproc_per_node") + 1] == "2" and "--standalone" in command
    assert command[-4:] == ["train-run", "20260101-000000-transformer-abc123", "--config", "/etc/studio.toml"]
    assert distributed.launch_command("r", 3, None)[-2:] == ["train-run", "r"]


def test_zero_processes_means_one_per_gpu_and_one_without(monkeypatch):
    import torch

    config = AppConfig()
    assert distributed.resolved_processes(config) == 1  # the default
    config.training.processes = 0
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert distributed.resolved_processes(config) == 1
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert distributed.resolved_processes(config) == 4
    config.training.processes = 3
    assert distributed.resolved_processes(config) == 3


@pytest.mark.slow
def test_a_worker_trains_a_queued_transformer_run_under_torchrun_when_configured(isolated_workspace, tiny_settings,
                                                                                 monkeypatch):
    """``[training] processes = 2``: the worker launches torchrun for the run the app queued; still one run."""
    from tests.conftest import QueueWithWorker

    tiny_settings.write_text(tiny_settings.read_text().replace("[training]\n", "[training]\nprocesses = 2\n"))
    monkeypatch.setenv(CONFIG_ENV_VAR, str(tiny_settings))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    config = load_config()
    version = save_demo_version(isolated_workspace, config)
    jobs = QueueWithWorker(isolated_workspace, config)
    queued = jobs.submit(RunRequest(version.ref, "transformer", "quick", config.training.hyperparameters("quick")),
                         ANALYST)
    record = jobs.wait(queued.run_id, timeout=TORCHRUN_TIMEOUT_S)
    assert_trained_by_two(isolated_workspace, record)
    assert record.owner == jobs.worker.owner and [r.run_id for r in list_runs(isolated_workspace)] == [record.run_id]
    deadline = time.monotonic() + 60  # the record says succeeded a moment before torchrun's processes exit
    while not jobs.worker.finished and time.monotonic() < deadline:
        time.sleep(0.1)
    assert jobs.worker.finished == {"succeeded": 1}
