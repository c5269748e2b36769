"""Inference speed: the plain Hugging Face pipeline versus the project's predictor (float32, int8, bfloat16).

    python -m bench.inference [--model RUN_FOLDER]

All paths truncate at the same ``max_length`` and score the same texts: the demo
data as it is (**short**) and the same texts joined 1 to 8 at a time (**mixed**).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from bench.common import demo_texts, fine_tuned_run, mixed_texts, summary, texts_per_second
from core.config import load_config
from core.hardware import configure_cpu_threads, detect_hardware
from core.precision import PrecisionCheck
from core.serving import pipeline_scorer
from core.training import load_run_model
from core.workspace import Workspace


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.inference", description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a transformer run folder (default: fine-tune one on the demo data now)")
    args = parser.parse_args(argv)
    config = load_config()
    configure_cpu_threads(config.training.cpu_threads)
    if args.model:
        workspace, run = Workspace(Path(args.model).resolve().parent.parent), args.model
    else:
        print("fine-tuning the packaged MiniLM on the demo data (Quick preset)…", flush=True)
        workspace, run, config = fine_tuned_run(config)
    model, record = load_run_model(workspace, run, config)
    folder = workspace.runs / record.run_id / "model"
    max_length = record.model.get("max_length", config.model.max_length)
    hardware = detect_hardware(config.training.cpu_threads, "auto")
    print(f"model: {record.run_id} ({record.settings['model']['name']}), max_length {max_length}; {hardware.describe()}")

    pipe = pipeline_scorer(folder, record.labels, max_length)
    from transformers import pipeline

    per_text_pipe = pipeline("text-classification", model=str(folder), top_k=None, device=-1)

    def pipeline_per_text(texts: list[str]) -> list:
        return [per_text_pipe(text, truncation=True, max_length=max_length) for text in texts]

    def pipeline_batched(texts: list[str]) -> list:
        return per_text_pipe(texts, batch_size=32, truncation=True, max_length=max_length)

    figures: dict[str, float] = {}
    sets = {"short": demo_texts(), "mixed": mixed_texts(demo_texts())}
    speeds: dict[str, dict[str, float]] = {}
    for name, texts in sets.items():
        row = speeds[name] = {}
        row["pipeline_per_text"] = texts_per_second(pipeline_per_text, texts)
        row["pipeline_batched"] = texts_per_second(pipeline_batched, texts)
        for precision in ("fp32", "int8", "bf16"):
            try:
                model.use_precision(precision)
            except (RuntimeError, ValueError) as error:
                print(f"{precision}: not available here ({error})")
                continue
            row[f"predictor_{precision}"] = texts_per_second(model.predict_proba, texts, repeats=2)
        model.use_precision("fp32")
        print(f"\n{name} texts ({len(texts)}, mean {np.mean([len(t.split()) for t in texts]):.0f} words):")
        for path, value in row.items():
            print(f"  {path:22s} {value:8.1f} texts/s")

    reference = np.asarray(pipe(sets["short"] + sets["mixed"])).argmax(axis=1)
    ours = model.predict_proba(sets["short"] + sets["mixed"]).argmax(axis=1)
    agreement = float((reference == ours).mean())
    check = PrecisionCheck.from_dict(record.inference)

    figures["predictor_vs_pipeline_per_text"] = min(speeds[s]["predictor_fp32"] / speeds[s]["pipeline_per_text"]
                                                    for s in sets)
    figures["predictor_vs_pipeline_batched_short"] = speeds["short"]["predictor_fp32"] / speeds["short"]["pipeline_batched"]
    figures["predictor_vs_pipeline_batched_mixed"] = speeds["mixed"]["predictor_fp32"] / speeds["mixed"]["pipeline_batched"]
    figures["predictor_label_agreement"] = agreement
    for precision in ("int8", "bf16"):
        if f"predictor_{precision}" in speeds["short"]:
            figures[f"{precision}_vs_predictor"] = min(speeds[s][f"predictor_{precision}"] / speeds[s]["predictor_fp32"]
                                                        for s in sets)
            if check is not None and precision in check.accuracy:
                figures[f"{precision}_accuracy_delta"] = 100 * (check.accuracy["fp32"] - check.accuracy[precision])
    if check is not None:
        figures["served_precision"] = check.chosen
    summary(figures)


if __name__ == "__main__":
    main()
