"""Reduced-precision inference on CPU: int8 (dynamic quantisation of the linear layers) and bfloat16.

A reduced copy is used only if its accuracy on the run's validation split stays
within ``max_accuracy_loss`` of full precision; the check is made and recorded
when a transformer run is saved, and ``auto`` serves the fastest variant that
passed.

int8 goes through ``torch.ao.quantization.quantize_dynamic``, which torch 2.13
marks deprecated in favour of torchao. Measured on this 2-core CPU with the
fine-tuned MiniLM (demo texts, 2026-11-25): float32 422 texts/s, this route
954/s, torchao 0.18 ``Int8DynamicActivationInt8WeightConfig`` in eager mode
563/s (its fast CPU path needs ``torch.compile``). So the deprecated route stays
until torchao's is faster here; swapping is local to ``reduced_copy``.
"""

from __future__ import annotations

import copy
import time
import warnings
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np

from core.platform.hardware import cpu_supports_bf16

PRECISIONS = ("fp32", "int8", "bf16")
#: Validation texts timed per precision (accuracy always uses them all).
SPEED_SAMPLE = 256
#: Faster first when speeds tie; measured speeds decide otherwise.
PREFERENCE = ("int8", "bf16", "fp32")


def reduced_copy(model: Any, precision: str) -> Any:
    """A copy of a torch model at ``precision`` (the original is left untouched)."""
    import torch

    if precision == "fp32":
        return model
    clone = copy.deepcopy(model).float().cpu().eval()
    if precision == "bf16":
        return clone.to(torch.bfloat16)
    if precision == "int8":
        from torch.ao.quantization import quantize_dynamic

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the deprecation notice; see the module docstring
            return quantize_dynamic(clone, {torch.nn.Linear}, dtype=torch.qint8)
    raise ValueError(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")


def available_precisions() -> list[str]:
    """fp32 always; int8 on CPU; bf16 where the CPU has native bfloat16 instructions."""
    return ["fp32", "int8"] + (["bf16"] if cpu_supports_bf16() else [])


@dataclass
class PrecisionCheck:
    """Validation accuracy and speed of each precision, and which one ``auto`` serves."""

    accuracy: dict[str, float]
    texts_per_second: dict[str, float]
    passed: dict[str, bool]
    chosen: str
    max_accuracy_loss: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "PrecisionCheck | None":
        return cls(**data) if data else None


def check_precisions(use: Callable[[str], None], score: Callable[[list[str]], np.ndarray], texts: list[str],
                     label_ids: list[int], max_accuracy_loss: float,
                     precisions: list[str] | None = None) -> PrecisionCheck:
    """Score the validation texts at each precision; keep those within ``max_accuracy_loss`` of fp32.

    ``use(precision)`` switches the model (not timed); ``score(texts)`` returns the score matrix.
    Accuracy uses every text; speed is timed on at most ``SPEED_SAMPLE`` of them (best of two passes),
    so the check stays cheap on large validation splits.
    """
    truth = np.asarray(label_ids)
    sample = texts[:SPEED_SAMPLE]
    accuracy, speed = {}, {}
    for precision in precisions or available_precisions():
        use(precision)
        predicted = score(texts).argmax(axis=1)  # also warms the model up
        accuracy[precision] = float((predicted == truth).mean()) if len(truth) else 0.0
        timings = []
        for _ in range(2):
            started = time.perf_counter()
            score(sample)
            timings.append(time.perf_counter() - started)
        speed[precision] = len(sample) / min(timings) if min(timings) > 0 else 0.0
    passed = {p: accuracy["fp32"] - accuracy[p] <= max_accuracy_loss + 1e-12 for p in accuracy}
    candidates = [p for p in PREFERENCE if passed.get(p)]
    chosen = max(candidates, key=lambda p: (speed[p], -PREFERENCE.index(p)))
    return PrecisionCheck(accuracy, speed, passed, chosen, max_accuracy_loss)
