"""Zero-shot by label names: how far the names alone go, before anyone labels an example.

    python -m bench.zero_shot [--data-dir ../shared/data] [--sets clinc150,uci,demo]

For each set, ``core.models.zero_shot`` embeds the label names (underscores read as spaces) and scores the test
texts by their similarity (CLINC150's own test file; the demo and UCI sets: every text). Its confidence is
scaled on 5 labelled texts per label from the training file, which does not change which label wins. Prints the
CPU it ran on, accuracy and macro-F1 per set and the seconds, then a ``key: value`` summary. No target: the few-
shot benchmark that issue 33 targets (8 examples per label) will report it beside the kinds that learn from them.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path

from sklearn.metrics import accuracy_score, f1_score

from bench.common import summary
from core.data.ingest import DEMO_DATASET
from core.models.classifiers import ModelSpec, TrainingData
from core.models.zero_shot import ZeroShotClassifier
from core.platform.config import PROJECT_ROOT, load_config
from core.platform.hardware import cpu_features, cpu_kind

#: Labelled texts per label that scale the confidence (the validation split of the tiny "training" set).
PER_LABEL = 5


def read(path: Path, field: str) -> tuple[list[str], list[str]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r["text"] for r in rows], [r[field] for r in rows]


def sets(data_dir: Path) -> dict[str, tuple[Path, Path, str]]:
    """Name → (file the few labelled texts come from, test file, label field)."""
    clinc, uci = data_dir / "clinc150", data_dir / "uci-sentiment-sentences" / "reviews.jsonl"
    return {"clinc150": (clinc / "train.jsonl", clinc / "test.jsonl", "intent"), "uci": (uci, uci, "sentiment"),
            "demo": (DEMO_DATASET, DEMO_DATASET, "label")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(PROJECT_ROOT.parent / "shared" / "data"))
    parser.add_argument("--sets", default="clinc150,uci,demo")
    args = parser.parse_args(argv)
    print(f"# CPU: {cpu_kind()}; flags: {', '.join(f for f, on in cpu_features().items() if on) or 'none'}")
    figures: dict[str, float | str] = {"cpu": cpu_kind()}
    spec = ModelSpec.of(load_config())
    for name in args.sets.split(","):
        train_path, test_path, field = sets(Path(args.data_dir))[name]
        texts, labels = read(train_path, field)
        names = sorted(set(labels))
        few = {label: [t for t, l in zip(texts, labels) if l == label][:PER_LABEL] for label in names}
        held = [(t, names.index(label)) for label in names for t in few[label]]
        data = TrainingData(names, [], [], [t for t, _ in held], [i for _, i in held])
        started = time.perf_counter()
        model = ZeroShotClassifier(names, None, spec).fit(data, lambda _: None, threading.Event())
        test_texts, test_labels = read(test_path, field)
        given = model.predict(test_texts)
        seconds = time.perf_counter() - started
        accuracy, macro = accuracy_score(test_labels, given), f1_score(test_labels, given, average="macro")
        print(f"{name:9s} {len(names):>3} labels, {len(test_texts):>5,} test texts: accuracy {accuracy:.3f}, "
              f"macro-F1 {macro:.3f}, temperature {model.calibration['temperature']:.3f}, {seconds:.0f} s",
              flush=True)
        figures.update({f"{name}_zero_shot_accuracy": accuracy, f"{name}_zero_shot_macro_f1": macro,
                        f"{name}_seconds": seconds})
    summary(figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
