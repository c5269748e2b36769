"""What both benchmarks share: a fine-tuned model on the repo's demo data, the two text sets, timing."""

from __future__ import annotations

import random
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

from core.accounts.auth import command_line_actor
from core.data.cleaning import CleaningOptions
from core.platform.config import AppConfig, load_config
from core.data.ingest import DEMO_DATASET, read_feedback_file
from core.data.preparation import prepare, save_preparation
from core.training.runs import RunHandle, RunRequest, create_run
from core.data.split import SplitPlan
from core.training.execution import execute_run, plan_for_version
from core.platform.workspace import Workspace

SEED = 13


def demo_texts() -> list[str]:
    table = read_feedback_file(DEMO_DATASET, 10_000_000)
    return [row["text"] for row in table.records]


def mixed_texts(texts: list[str], count: int | None = None, seed: int = SEED) -> list[str]:
    """Deterministically join 1 to 8 texts, so lengths vary widely (the 'mixed' set)."""
    rng = random.Random(seed)
    return [" ".join(rng.sample(texts, rng.randint(1, 8))) for _ in range(count or len(texts))]


def fine_tuned_run(config: AppConfig | None = None) -> tuple[Workspace, str, AppConfig]:
    """Fine-tune the configured model (the packaged MiniLM by default) on the demo data, Quick preset."""
    config = config or load_config()
    workspace = Workspace(Path(tempfile.mkdtemp(prefix="fs-bench-"))).ensure()
    prepared = prepare(read_feedback_file(DEMO_DATASET, 10_000_000), "text", "label", CleaningOptions(), config)
    version = save_preparation(workspace, "demo", prepared, SplitPlan.from_config(config.split), command_line_actor())
    recipe = plan_for_version(version, "quick", config)  # the Quick recipe for this data, as the Train page plans it
    record = create_run(workspace, RunRequest(version.ref, "transformer", "quick", recipe.hyperparameters, recipe=recipe),
                        config, command_line_actor())
    final = execute_run(workspace, RunHandle(workspace, record), config, threading.Event())
    if final.state.value != "succeeded":
        raise SystemExit(f"fine-tuning for the benchmark failed: {final.error}")
    return workspace, final.run_id, config


def texts_per_second(score: Callable[[list[str]], object], texts: list[str], repeats: int = 1) -> float:
    """Best of ``repeats`` timed passes over ``texts`` after a short warm-up."""
    score(texts[:8])
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        score(texts)
        best = min(best, time.perf_counter() - started)
    return len(texts) / best


def cpu_line() -> str:
    """The CPU a benchmark ran on: its name, kind and the speed-deciding flags it has."""
    from core.platform.hardware import cpu_features, cpu_kind, cpu_model_name

    flags = [name for name, present in cpu_features().items() if present]
    return f"CPU: {cpu_model_name()} · kind {cpu_kind()} · flags: {', '.join(flags) or 'none of ' + ', '.join(cpu_features())}"


def summary(figures: dict[str, float]) -> None:
    """The machine-readable tail: one ``key: value`` line per figure."""
    print("\n# summary")
    for key, value in figures.items():
        print(f"{key}: {value:.4g}" if isinstance(value, float) else f"{key}: {value}")


def check_targets(figures: dict[str, float | str], targets: dict[str, tuple[str, float]]) -> bool:
    """Print each figure against its target (``met`` / ``MISSED``); True when every target present is met."""
    print("\n# targets")
    all_met, measured = True, 0
    for key, (comparison, bound) in targets.items():
        if key not in figures:
            print(f"{key}: not measured here")
            continue
        measured += 1
        value = float(figures[key])
        met = value >= bound - 1e-9 if comparison == ">=" else value <= bound + 1e-9
        all_met &= met
        print(f"{key}: {value:.4g} (target {comparison} {bound:g}) {'met' if met else 'MISSED'}")
    print(f"targets_met: {('yes' if all_met else 'no') if measured else 'none measured here'}")
    return all_met and measured > 0
