"""A multi-label set the tag work was never tuned on: CLINC150's requests joined into multi-request messages.

Built the way MixATIS and MixSNIPS were made from single-intent sets (Qin et al., "AGIF", Findings of EMNLP
2020): one to three requests of different intents joined by a connective, each message tagged with its requests'
intents (150 tags). Every request is used once: training messages from CLINC150's training file, test messages
from its test file only, so no test request was seen in training. Deterministic for a seed.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

#: How many requests a message joins, and how often (half the messages carry one, as feedback often does).
REQUESTS_PER_MESSAGE = {1: 0.5, 2: 0.35, 3: 0.15}
CONNECTIVES = (" and ", ", also ", ". ", " and then ", ", plus ")


def mixed_messages(source: Path, seed: int) -> list[dict]:
    """Every request of ``source`` (JSONL with ``text`` and ``intent``) used once, in messages of one to three
    requests of different intents, each with the list of its requests' intents under ``labels``. (Used once: a
    request in two messages would sit on both sides of the validation split the product cuts.)"""
    rows = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
    rng = random.Random(seed)
    rng.shuffle(rows)
    sizes, weights = list(REQUESTS_PER_MESSAGE), list(REQUESTS_PER_MESSAGE.values())
    messages = []
    while rows:
        size = rng.choices(sizes, weights)[0]
        picked = [rows.pop()]
        for row in reversed(rows[-20:]):  # the next requests of other intents
            if len(picked) == size:
                break
            if all(row["intent"] != other["intent"] for other in picked):
                picked.append(row)
                rows.remove(row)
        text = picked[0]["text"]
        for row in picked[1:]:
            text += rng.choice(CONNECTIVES) + row["text"]
        messages.append({"text": text, "labels": sorted(row["intent"] for row in picked)})
    return messages


def write_mixed_intents(clinc_folder: Path, target: Path, seed: int = 7) -> tuple[Path, Path]:
    """The training and test files of the mixed set under ``target`` (the same for a seed)."""
    target.mkdir(parents=True, exist_ok=True)
    paths = []
    for split, offset in (("train", 0), ("test", 1)):
        path = target / f"{split}.jsonl"
        messages = mixed_messages(clinc_folder / f"{split}.jsonl", seed + offset)
        path.write_text("".join(json.dumps(m) + "\n" for m in messages), encoding="utf-8")
        paths.append(path)
    return paths[0], paths[1]
