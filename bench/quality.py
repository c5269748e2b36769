"""Quality: every model kind through the product's own command line, on three labelled and two tagged sets.

    python -m bench.quality [--sets demo,uci,clinc150,goemotions,mixclinc] [--clinc-presets quick,balanced,thorough]
                            [--repeat SET] [--data-dir ../shared/data]

Each set is trained with ``python -m core train`` (the path an analyst's runs take:
validation, a stratified split, the recipe, the background-job code) in a scratch
workspace: the three baselines and the transformer with the Balanced preset, plus the
Quick and Thorough transformers on CLINC150. CLINC150 keeps its own test file; the other
sets are split 80/10/10 by the configured seed. Per set × model × preset the benchmark
prints test accuracy, macro-F1, training seconds and the recipe, then a ``key: value``
summary and each target with ``met`` / ``MISSED``. ``--repeat SET`` trains the Balanced
transformer on SET a second time and checks that the recipe and the test metrics are
the same (to the third decimal).

The sets: the repo's demo feedback (5 labels, 40 test texts: reported, not targeted);
``uci-sentiment-sentences/reviews.jsonl`` (field ``sentiment``, 2 labels, 3,000 texts);
``clinc150`` (field ``intent``, 150 labels, 10,525 training and 4,500 test texts).

The tagged sets (several tags per text) train the same way and are scored by micro-F1, each kind's test figures
both with the per-tag thresholds it keeps and with one 0.5 threshold (recomputed from the test scores the run
stores): ``goemotions`` (field ``labels``, lists of 28 emotion tags; 43,410 training and 5,427 test texts) and
``mixclinc``, a set none of the tag work was tuned on (``bench.mixed_intents``: CLINC150's requests joined one
to three per message, each request used once, 150 tags: 6,391 training and 2,740 test messages).
Not part of ``make test``: about two hours on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.common import check_targets, summary
from bench.mixed_intents import write_mixed_intents
from core.evaluation.tag_scoring import load_tag_scores
from core.models.multilabel import decide, multilabel_metrics
from core.platform.config import PROJECT_ROOT, load_config
from core.presentation.epoch_words import epochs_in_words
from core.platform.hardware import cpu_features, cpu_kind, detect_hardware, usable_cores
from core.data.ingest import DEMO_DATASET
from core.training.recipe import DataProfile, estimate_seconds

BASELINES = ("tfidf_logreg", "tfidf_nb", "embedding_logreg")
#: The command line's progress lines, which share the recipe's "[transformer]" prefix.
PROGRESS_LINE = re.compile(r"^\[transformer\]\s+\d+% (step|[\d,]+ of [\d,]+ texts)")
#: Targets on the 2-core CPU, either kind (AVX2 without bfloat16, or AVX-512 with it).
TARGETS = {
    "balanced_minus_best_baseline_min": (">=", 0.01),
    #: Issue 34: with the epochs fitted to the budget as the run trains, Balanced 1.5 points above the best
    #: baseline on CLINC150 (within its 20 minutes: clinc150_balanced_train_s).
    "clinc150_balanced_minus_best_baseline": (">=", 0.015),
    "clinc150_thorough_minus_balanced": (">=", 0.0),
    "clinc150_quick_minus_tfidf_logreg": (">=", 0.0),
    "clinc150_balanced_train_s": ("<=", 1200.0),
    "clinc150_quick_train_s": ("<=", 360.0),
    "repeat_max_metric_change": ("<=", 0.0005),
    #: The Train page's pre-start estimate against the time the fine-tuning took, on an idle machine.
    "estimate_error_max": ("<=", 0.30),
    #: Issue 32, on each tagged set: the transformer's micro-F1 at least 2 points above the best baseline's, and
    #: per-tag thresholds above one 0.5 threshold on macro-F1 (the transformer's; every kind's is printed)...
    "goemotions_balanced_micro_minus_best_baseline": (">=", 0.02),
    "mixclinc_balanced_micro_minus_best_baseline": (">=", 0.02),
    "goemotions_transformer_thresholds_gain_macro_f1": (">=", 0.0),
    "mixclinc_transformer_thresholds_gain_macro_f1": (">=", 0.0),
    #: ...and GoEmotions macro-F1 of at least the paper's BERT-base (0.46) with a model a fifth of its size.
    "goemotions_balanced_macro_f1": (">=", 0.46),
}


@dataclass(frozen=True)
class LabelledSet:
    name: str
    train: Path
    label_field: str
    test: Path | None = None
    tagged: bool = False  # several tags per text (a JSON list in the label field)


def labelled_sets(data_dir: Path, scratch: Path) -> dict[str, LabelledSet]:
    """The sets by name; the mixed-intent set is written under ``scratch`` from CLINC150 (when CLINC150 is
    missing, its file is what the check for missing files names)."""
    clinc = data_dir / "clinc150"
    complete = all((clinc / f"{split}.jsonl").exists() for split in ("train", "test"))
    mixed = (write_mixed_intents(clinc, scratch / "mixclinc") if complete
             else (clinc / "train.jsonl", clinc / "test.jsonl"))
    return {
        "demo": LabelledSet("demo", DEMO_DATASET, "label"),
        "uci": LabelledSet("uci", data_dir / "uci-sentiment-sentences" / "reviews.jsonl", "sentiment"),
        "clinc150": LabelledSet("clinc150", clinc / "train.jsonl", "intent", clinc / "test.jsonl"),
        "goemotions": LabelledSet("goemotions", data_dir / "goemotions" / "train.jsonl", "labels",
                                  data_dir / "goemotions" / "test.jsonl", tagged=True),
        "mixclinc": LabelledSet("mixclinc", mixed[0], "labels", mixed[1], tagged=True),
    }


def train(labelled: LabelledSet, models: list[str], preset: str, workspace: Path,
          extra_env: dict[str, str] | None = None) -> list[dict]:
    """One ``python -m core train`` call (``extra_env``: e.g. a settings file); its JSON lines (one per model,
    then the recommendation)."""
    command = [sys.executable, "-m", "core", "train", "--data", str(labelled.train), "--text-field", "text",
               "--label-field", labelled.label_field, "--models", ",".join(models), "--preset", preset,
               "--name", labelled.name]
    if labelled.test:
        command += ["--test-data", str(labelled.test)]
    env = {**os.environ, "FEEDBACK_STUDIO_WORKSPACE": str(workspace), **(extra_env or {})}
    started = time.monotonic()
    done = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True)
    recipe_lines = [line.split("] ", 1)[1].strip() for line in done.stderr.splitlines()
                    if line.startswith("[transformer]   ") and not PROGRESS_LINE.match(line)]
    if done.returncode != 0:
        raise SystemExit(f"{labelled.name}/{preset} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    for row in rows:
        if row.get("model") == "transformer":
            row["recipe_reasons"] = recipe_lines
    print(f"  ({labelled.name}, {preset}: {time.monotonic() - started:.0f} s end to end)", flush=True)
    return rows


def estimate_ratio(row: dict) -> float | None:
    """The pre-start estimate over the run's measured start-to-finish time (what the analyst waits for),
    for the epochs actually run (early stopping ends a run before its planned epochs: that is not an
    estimation error)."""
    record = json.loads((Path(row["run_folder"]) / "run.json").read_text())
    recipe, info = record.get("recipe") or {}, record.get("fit_info") or {}
    speed, total_s = recipe.get("speed_texts_per_s"), (record.get("durations") or {}).get("total_s")
    if not speed or not total_s or info.get("epochs_run") is None:
        return None
    estimate = estimate_seconds(DataProfile(**recipe["profile"]), float(info["epochs_run"]), speed,
                                record["hyperparameters"].get("warm_start", True))
    return estimate / total_s


def epoch_story(row: dict) -> str:
    """Planned against actual for a transformer run: the Evaluate page's words on its epochs, the first plan's
    estimate and the seconds trained of the fit's budget."""
    record = json.loads((Path(row["run_folder"]) / "run.json").read_text())
    info, estimate = record.get("fit_info") or {}, (record.get("recipe") or {}).get("estimate_s")
    budget = (info.get("epoch_plan") or {}).get("budget_s")
    return (f"{epochs_in_words(info)} Estimated {estimate or 0:.0f} s for the first plan; trained "
            f"{row['train_seconds'] or 0:.0f} s" + (f" of a {budget:.0f} s budget." if budget else "."))


def at_half(row: dict) -> dict[str, float]:
    """A tagger's test figures with one 0.5 threshold for every tag, from the test scores its run stored."""
    stored = load_tag_scores(Path(row["run_folder"]))
    given = decide(stored.scores, np.full(len(stored.names), 0.5), stored.at_least_one)
    return multilabel_metrics(stored.truth, given)


def print_tag_row(set_name: str, row: dict, preset: str) -> None:
    test, half = row["test_metrics"], row["at_half"]
    shown_preset = preset if row["model"] == "transformer" else "—"
    print(f"{set_name:10s} {row['model']:17s} {shown_preset:9s} micro-F1 {test['micro_f1']:.4f} (0.5: "
          f"{half['micro_f1']:.4f})  macro-F1 {test['macro_f1']:.4f} (0.5: {half['macro_f1']:.4f})  samples-F1 "
          f"{test['samples_f1']:.4f}  subset acc {test['subset_accuracy']:.4f}  Hamming {test['hamming_loss']:.4f}"
          f"  train {row['train_seconds'] or 0:7.1f} s  {row.get('recipe') or ''}", flush=True)


def tag_figures(name: str, results: dict[str, dict]) -> dict[str, float]:
    """A tagged set's figures: each kind's micro/macro-F1 with its thresholds and at 0.5, the transformer's lead."""
    figures: dict[str, float] = {}
    for key, row in results.items():
        kind = "transformer" if key.startswith("transformer") else key
        for metric in ("micro_f1", "macro_f1"):
            figures[f"{name}_{kind}_{metric}"] = row["test_metrics"][metric]
            figures[f"{name}_{kind}_{metric}_at_0.5"] = row["at_half"][metric]
        gain = row["test_metrics"]["macro_f1"] - row["at_half"]["macro_f1"]
        figures[f"{name}_{kind}_thresholds_gain_macro_f1"] = gain
    best = max((results[b]["test_metrics"]["micro_f1"] for b in BASELINES if b in results), default=None)
    if best is not None and "transformer_balanced" in results:
        transformer = results["transformer_balanced"]["test_metrics"]
        figures[f"{name}_best_baseline_micro_f1"] = best
        figures[f"{name}_balanced_micro_minus_best_baseline"] = transformer["micro_f1"] - best
        figures[f"{name}_balanced_macro_f1"] = transformer["macro_f1"]
        figures[f"{name}_balanced_train_s"] = float(results["transformer_balanced"]["train_seconds"])
    return figures


def print_row(set_name: str, row: dict, preset: str) -> None:
    if "at_half" in row:
        return print_tag_row(set_name, row, preset)
    test = row["test_metrics"] or {}
    shown_preset = preset if row["model"] == "transformer" else "—"
    print(f"{set_name:9s} {row['model']:17s} {shown_preset:9s} acc {test.get('accuracy', float('nan')):.4f}  "
          f"macro-F1 {test.get('macro_f1', float('nan')):.4f}  train {row['train_seconds'] or 0:7.1f} s  "
          f"{row.get('recipe') or ''}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", default="demo,uci,clinc150,goemotions,mixclinc")
    parser.add_argument("--clinc-presets", default="quick,balanced,thorough",
                        help="transformer presets on CLINC150 (balanced is needed for its targets)")
    parser.add_argument("--repeat", default="demo", help="set whose Balanced transformer is trained twice ('' skips)")
    parser.add_argument("--data-dir", default=str(PROJECT_ROOT.parent / "shared" / "data"))
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="fs-bench-quality-"))
    sets = labelled_sets(Path(args.data_dir), scratch)
    chosen = [name.strip() for name in args.sets.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in sets]
    if unknown:
        parser.error(f"unknown set(s) {', '.join(unknown)}; choose from {', '.join(sets)}")
    missing = [str(sets[name].train) for name in chosen if not sets[name].train.exists()]
    if missing:
        parser.error(f"missing data file(s): {', '.join(missing)} (see --data-dir)")

    features, config = cpu_features(), load_config()
    print(f"CPU: {cpu_kind()} ({', '.join(f for f, present in features.items() if present) or 'none of the listed'}); "
          f"{usable_cores()} cores; {detect_hardware(config.training.cpu_threads, config.training.precision).describe()}")
    figures: dict[str, float | str] = {"cpu_kind": cpu_kind()}
    for name in chosen:
        labelled = sets[name]
        presets = ["balanced"]
        if name == "clinc150":
            presets = [p.strip() for p in args.clinc_presets.split(",") if p.strip()]
        print(f"\n# {name}", flush=True)
        results: dict[str, dict] = {}
        for index, preset in enumerate(presets):
            models = (list(BASELINES) if index == 0 else []) + ["transformer"]
            for row in train(labelled, models, preset, scratch / f"{name}-{preset}"):
                if "model" not in row:
                    print(f"  verdict: {row.get('verdict')}", flush=True)
                    continue
                key = row["model"] if row["model"] != "transformer" else f"transformer_{preset}"
                if labelled.tagged:
                    if "micro_f1" not in (row["test_metrics"] or {}):
                        raise SystemExit(f"{name}: {row['model']} was not trained as a tagger: {row['test_metrics']}")
                    row["at_half"] = at_half(row)
                results[key] = row
                print_row(name, row, preset)
                for reason in row.get("recipe_reasons", []):
                    print(f"      {reason}")
                if row["model"] == "transformer":
                    print(f"      epochs: {epoch_story(row)}", flush=True)
        if labelled.tagged:
            figures.update(tag_figures(name, results))
            continue
        f1 = {key: row["test_metrics"]["macro_f1"] for key, row in results.items()}
        best_baseline = max(f1[b] for b in BASELINES if b in f1)
        figures[f"{name}_best_baseline_macro_f1"] = best_baseline
        for preset in presets:
            figures[f"{name}_{preset}_macro_f1"] = f1[f"transformer_{preset}"]
            figures[f"{name}_{preset}_train_s"] = float(results[f"transformer_{preset}"]["train_seconds"])
            ratio = estimate_ratio(results[f"transformer_{preset}"])
            if ratio is not None:
                figures[f"{name}_{preset}_estimate_over_actual"] = ratio
        if "transformer_balanced" in f1:
            figures[f"{name}_balanced_minus_best_baseline"] = f1["transformer_balanced"] - best_baseline
        if name == "clinc150":
            if {"transformer_thorough", "transformer_balanced"} <= f1.keys():
                figures["clinc150_thorough_minus_balanced"] = f1["transformer_thorough"] - f1["transformer_balanced"]
            if {"transformer_quick", "tfidf_logreg"} <= f1.keys():
                figures["clinc150_quick_minus_tfidf_logreg"] = f1["transformer_quick"] - f1["tfidf_logreg"]
    ratios = [value for key, value in figures.items() if key.endswith("_estimate_over_actual")]
    if ratios:
        figures["estimate_error_max"] = max(abs(ratio - 1) for ratio in ratios)
    margins = [figures[f"{name}_balanced_minus_best_baseline"] for name in ("uci", "clinc150")
               if f"{name}_balanced_minus_best_baseline" in figures]
    if margins:
        figures["balanced_minus_best_baseline_min"] = min(margins)

    if args.repeat:
        print(f"\n# repeat: the Balanced transformer on {args.repeat}, twice", flush=True)
        runs = [next(r for r in train(sets[args.repeat], ["transformer"], "balanced", scratch / f"repeat-{i}")
                     if r.get("model") == "transformer") for i in (1, 2)]
        chosen = [json.loads((Path(run["run_folder"]) / "run.json").read_text())["hyperparameters"] for run in runs]
        same_recipe = chosen[0] == chosen[1]  # the estimate in the summary may differ with the measured speed
        change = max(abs(runs[0]["test_metrics"][k] - runs[1]["test_metrics"][k]) for k in ("accuracy", "macro_f1"))
        print(f"recipes: {runs[0]['recipe']} | {runs[1]['recipe']} (hyper-parameters "
              f"{'the same' if same_recipe else 'DIFFERENT'}); largest test metric change {change:.4f}")
        figures["repeat_same_recipe"] = "yes" if same_recipe else "no"
        figures["repeat_max_metric_change"] = change if same_recipe else 1.0
    summary(figures)
    check_targets(figures, TARGETS)


if __name__ == "__main__":
    main()
