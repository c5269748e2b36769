"""Which texts to label next: does the Label page's choice teach more than texts drawn at random?

    python -m bench.active_learning [--sets demo,uci,clinc150,goemotions1] [--seeds 0,1,2]

Per set and seed: a few labelled texts per label to start (2; 1 on CLINC150's 150 intents), then rounds in which a
batch of texts from the unlabelled pool is labelled (their true labels revealed) and the model trained again. The
model is the sentence-embeddings kind's (the configured encoder's mean-pooled embeddings, computed once, and
logistic regression with its settings), so a round takes a second. Three ways to choose a batch:

- ``random``: drawn at random (what labelling the file top to bottom amounts to);
- ``margin``: the texts of smallest margin between the model's two best labels;
- ``cluster_margin``: the Label page's (core.models.active_learning.propose): the most uncertain text of each
  of ``batch`` groups of meaning among the ``pool_factor`` × ``batch`` most uncertain (5, the default);
- ``cluster_margin_wide``: the same from a pool twice as wide (10 × ``batch``), for comparison.

Printed per set: test accuracy and macro-F1 after each round for each way, averaged over the seeds, and the
mean over the rounds (the area under the learning curve, per round); then a ``key: value`` summary and the
target with ``met`` / ``MISSED``: ``cluster_margin`` at least as good as ``random`` on the mean test accuracy
over the rounds, on every set (either CPU kind). A few minutes on 2 cores (embedding CLINC150's 15,000 texts
is most of it).
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score

from bench.common import check_targets, cpu_line, summary
from bench.few_shot import read
from core.models.active_learning import margins, propose
from core.models.embeddings import EmbeddingLogRegSettings, shared_encoder
from core.platform.config import PROJECT_ROOT, load_config
from core.data.ingest import DEMO_DATASET

#: Per set: training file, test file (None: a quarter of the texts held out), label field, start per label,
#: batch, rounds.
SETS = {
    "demo": (DEMO_DATASET, None, "label", 2, 10, 10),
    "uci": (Path("uci-sentiment-sentences/reviews.jsonl"), None, "sentiment", 2, 20, 10),
    "clinc150": (Path("clinc150/train.jsonl"), Path("clinc150/test.jsonl"), "intent", 1, 150, 8),
    "goemotions1": (Path("goemotions/train.jsonl"), Path("goemotions/test.jsonl"), "labels", 2, 50, 10),
}
STRATEGIES = ("random", "margin", "cluster_margin", "cluster_margin_wide")
#: GoEmotions is drawn down to this many pool and test texts (its single-emotion comments).
MOST_POOL, MOST_TEST = 8000, 2000


def load(name: str, data_dir: Path) -> tuple[list[str], list[str], list[str], list[str]]:
    """Pool texts and labels, test texts and labels."""
    train_file, test_file, field = SETS[name][:3]
    rows = read(train_file if train_file.is_absolute() else data_dir / train_file, field)
    rng = random.Random(0)
    if test_file is None:
        rng.shuffle(rows)
        cut = len(rows) // 4
        test, pool = rows[:cut], rows[cut:]
    else:
        pool, test = rows, read(data_dir / test_file, field)
    pool, test = rng.sample(pool, min(MOST_POOL, len(pool))), rng.sample(test, min(MOST_TEST, len(test)))
    known = {label for _, label in pool}
    test = [(t, label) for t, label in test if label in known]
    return [t for t, _ in pool], [label for _, label in pool], [t for t, _ in test], [label for _, label in test]


def head(seed: int) -> LogisticRegression:
    settings = EmbeddingLogRegSettings()
    return LogisticRegression(C=settings.c, max_iter=settings.max_iter, random_state=seed,
                              class_weight="balanced" if settings.class_weighted else None)


def start(labels: np.ndarray, per_label: int, rng: np.random.Generator) -> list[int]:
    return [int(i) for label in np.unique(labels)
            for i in rng.choice(np.flatnonzero(labels == label), min(per_label, int((labels == label).sum())),
                                replace=False)]


def choose(strategy: str, model: LogisticRegression, vectors: np.ndarray, open_rows: np.ndarray, batch: int,
           rng: np.random.Generator, seed: int) -> list[int]:
    """The next batch, as row numbers of the pool."""
    if strategy == "random":
        return [int(i) for i in rng.choice(open_rows, min(batch, len(open_rows)), replace=False)]
    scores = model.predict_proba(vectors[open_rows])
    if strategy == "margin":
        return [int(open_rows[i]) for i in np.argsort(margins(scores), kind="stable")[:batch]]
    wide = 10 if strategy == "cluster_margin_wide" else 5
    return [int(open_rows[i]) for i in propose(scores, vectors[open_rows], batch, pool_factor=wide, seed=seed)]


def curve(strategy: str, pool: np.ndarray, labels: np.ndarray, test: np.ndarray, test_labels: np.ndarray,
          per_label: int, batch: int, rounds: int, seed: int) -> list[tuple[float, float]]:
    """Test accuracy and macro-F1 after the start and after each round."""
    rng = np.random.default_rng(seed)
    labelled = start(labels, per_label, rng)
    figures = []
    for round_ in range(rounds + 1):
        model = head(seed).fit(pool[labelled], labels[labelled])
        predicted = model.predict(test)
        figures.append((accuracy_score(test_labels, predicted),
                        f1_score(test_labels, predicted, average="macro", zero_division=0)))
        if round_ < rounds:
            open_rows = np.setdiff1d(np.arange(len(pool)), labelled)
            labelled += choose(strategy, model, pool, open_rows, batch, rng, seed)
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--data-dir", default=str(PROJECT_ROOT.parent / "shared" / "data"))
    args = parser.parse_args(argv)
    print(cpu_line())
    config = load_config()
    encoder = shared_encoder(config.model.name, config.model.max_length)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    figures: dict[str, float] = {}
    for name in [s.strip() for s in args.sets.split(",") if s.strip()]:
        pool_texts, pool_labels, test_texts, test_labels = load(name, Path(args.data_dir))
        pool, test = encoder.encode(pool_texts), encoder.encode(test_texts)
        per_label, batch, rounds = SETS[name][3:]
        print(f"\n{name}: {len(pool_texts):,} texts to draw from, {len(set(pool_labels))} labels, "
              f"{len(test_texts):,} test texts; {per_label} per label to start, {rounds} rounds of {batch}")
        for strategy in STRATEGIES:
            runs = np.array([curve(strategy, pool, np.array(pool_labels), test, np.array(test_labels), per_label,
                                   batch, rounds, seed) for seed in seeds])  # seeds × rounds+1 × (acc, F1)
            mean = runs.mean(axis=0)
            print(f"  {strategy:15s} accuracy " + " ".join(f"{a:.3f}" for a in mean[:, 0])
                  + f"  | mean {mean[1:, 0].mean():.4f}; macro-F1 at the end {mean[-1, 1]:.4f}", flush=True)
            figures[f"{name}_{strategy}_mean_accuracy"] = float(mean[1:, 0].mean())
            figures[f"{name}_{strategy}_final_accuracy"] = float(mean[-1, 0])
            figures[f"{name}_{strategy}_final_macro_f1"] = float(mean[-1, 1])
        figures[f"{name}_cluster_margin_minus_random"] = (figures[f"{name}_cluster_margin_mean_accuracy"]
                                                          - figures[f"{name}_random_mean_accuracy"])
    summary(figures)
    check_targets(figures, {key: (">=", 0.0) for key in figures if key.endswith("_cluster_margin_minus_random")})


if __name__ == "__main__":
    main()
