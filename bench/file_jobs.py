"""Big files as jobs: memory as the file grows, throughput against the predictor, one worker and two.

    python -m bench.file_jobs [--rows 100000,1000000] [--workers 1,2] [--run RUN_FOLDER] [--kind tfidf_logreg]

A CSV of ``rows`` feedback texts (the demo texts joined 1 to 8 at a time, with an id and a channel column) is
classified as a job by ``python -m core worker`` processes started for it (each warmed up before the clock
starts), from the moment the job is queued until its result is put together. Printed per size and worker count:
seconds, rows per second, and each worker's peak resident memory (VmHWM). The named baselines, measured in the
same run: the predictor on the same model scoring the same texts in one process, in memory (texts/s), and the
smallest file's peak memory. Targets (the issue's, any CPU kind): peak memory for the largest file within 1.2x
the smallest's; one worker's rows/s at least 0.9x the predictor's texts/s; two workers faster than one.
"""

from __future__ import annotations

import argparse
import csv
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.common import check_targets, cpu_line, demo_texts, mixed_texts, summary, texts_per_second
from core.accounts.auth import command_line_actor
from core.data.cleaning import CleaningOptions
from core.data.ingest import DEMO_DATASET, read_feedback_file
from core.data.preparation import prepare, save_preparation
from core.data.split import SplitPlan
from core.models.predict import Predictor
from core.platform.config import WORKSPACE_ENV_VAR, load_config
from core.platform.workspace import Workspace
from core.serving.runtime import serving_precision
from core.training import file_jobs
from core.training.execution import execute_run
from core.training.finished import load_run_model
from core.training.jobs import RunQueue, workers_online
from core.training.runs import RunHandle, RunRequest, create_run, load_record

TARGETS = {"peak_memory_largest_vs_smallest": ("<=", 1.2), "one_worker_vs_predictor": (">=", 0.9),
           "two_workers_vs_one": (">=", 1.0)}


def trained_run(workspace: Workspace, kind: str, config) -> str:
    """``kind`` trained on the demo data here (the baselines take seconds)."""
    prepared = prepare(read_feedback_file(DEMO_DATASET, 10_000_000), "text", "label", CleaningOptions(), config)
    version = save_preparation(workspace, "demo", prepared, SplitPlan.from_config(config.split), command_line_actor())
    record = create_run(workspace, RunRequest(version.ref, kind, "quick", config.training.hyperparameters("quick")),
                        config, command_line_actor())
    return execute_run(workspace, RunHandle(workspace, record), config, threading.Event()).run_id


def write_file(path: Path, rows: int, texts: list[str]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "comment", "channel"])
        writer.writerows((i, texts[i % len(texts)], "email" if i % 3 else "web") for i in range(rows))
    return path


def peak_rss_mb(pid: int) -> float:
    """A process's peak resident memory so far (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def classify_as_job(workspace: Workspace, config, source: Path, run_id: str, precision: str,
                    workers: int) -> tuple[float, list[float]]:
    """Seconds from queueing the file to its result, and each worker's peak memory (MB)."""
    env = {**os.environ, WORKSPACE_ENV_VAR: str(workspace.root)}
    processes = [subprocess.Popen([sys.executable, "-m", "core", "worker"], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL) for _ in range(workers)]
    try:
        while len(workers_online(workspace, config.worker.lease_s)) < workers:
            time.sleep(0.2)
        queue = RunQueue(workspace, config)
        record = load_record(workspace, run_id)
        started = time.perf_counter()
        job = queue.submit_file(source, source.name, "comment", record, precision, 0.6, command_line_actor())
        while not (job := file_jobs.load_job(workspace, job.job_id)).state.finished:
            time.sleep(0.2)
        seconds = time.perf_counter() - started
        if job.state is not file_jobs.JobState.DONE:
            raise SystemExit(f"the job ended {job.state.value}: {job.error}")
        queue.close()
        return seconds, [peak_rss_mb(p.pid) for p in processes]
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(60)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.file_jobs", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="100000,1000000", help="file sizes, smallest first")
    parser.add_argument("--workers", default="1,2", help="worker counts")
    parser.add_argument("--run", help="a finished run folder to classify with (default: train --kind here)")
    parser.add_argument("--kind", default="tfidf_logreg", help="the kind trained when no --run is given")
    parser.add_argument("--baseline-texts", type=int, default=20_000, help="texts the predictor baseline scores")
    args = parser.parse_args(argv)
    sizes, counts = [int(n) for n in args.rows.split(",")], [int(n) for n in args.workers.split(",")]
    config = load_config()
    print(cpu_line())
    workspace = Workspace(Path(tempfile.mkdtemp(prefix="fs-bench-jobs-"))).ensure()
    if args.run:
        source_workspace, run_id = Workspace(Path(args.run).resolve().parent.parent), Path(args.run).name
        (workspace.runs).mkdir(parents=True, exist_ok=True)
        os.symlink(source_workspace.runs / run_id, workspace.runs / run_id)
    else:
        run_id = trained_run(workspace, args.kind, config)
    texts = mixed_texts(demo_texts(), 5_000)
    model, record = load_run_model(workspace, run_id, config)
    precision = serving_precision(record, config)  # the variant the page, the API and the jobs serve
    model.use_precision(precision)
    predictor = Predictor.for_model(model, 0.6, config.classify.chunk_size)
    baseline = texts_per_second(predictor.predict, (texts * (args.baseline_texts // len(texts) + 1))[:args.baseline_texts])
    print(f"model: {record.name} ({precision}); predictor in one process, in memory: {baseline:,.0f} texts/s")
    figures: dict[str, float | str] = {"predictor_texts_per_s": baseline}
    for rows in sizes:
        source = write_file(workspace.root / f"feedback-{rows}.csv", rows, texts)
        for workers in counts:
            seconds, peaks = classify_as_job(workspace, config, source, run_id, precision, workers)
            print(f"{rows:>9,} rows, {workers} worker(s): {seconds:7.1f} s, {rows / seconds:8,.0f} rows/s, "
                  f"peak memory {' / '.join(f'{p:,.0f}' for p in peaks)} MB", flush=True)
            figures[f"rows_per_s_{rows}_{workers}w"] = rows / seconds
            figures[f"peak_mb_{rows}_{workers}w"] = max(peaks)
    smallest, largest = sizes[0], sizes[-1]
    figures["peak_memory_largest_vs_smallest"] = figures[f"peak_mb_{largest}_1w"] / figures[f"peak_mb_{smallest}_1w"]
    figures["one_worker_vs_predictor"] = figures[f"rows_per_s_{largest}_1w"] / baseline
    if 2 in counts:
        figures["two_workers_vs_one"] = figures[f"rows_per_s_{largest}_2w"] / figures[f"rows_per_s_{largest}_1w"]
    summary(figures)
    check_targets(figures, TARGETS)


if __name__ == "__main__":
    main()
