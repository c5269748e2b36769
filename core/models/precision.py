"""Serving variants of a fine-tuned transformer on CPU, and the check that picks one by measurement.

Variants: PyTorch float32 (``fp32``) and bfloat16 (``bf16``, where the CPU has
native bfloat16), and ONNX Runtime float32 and int8 (``onnx-fp32``,
``onnx-int8``: :mod:`core.models.runtimes`). When a transformer run is saved,
each is scored on the run's validation split and timed on part of it; a variant
may serve only if its validation macro-F1 stays within ``max_accuracy_loss`` of
fp32 and its labels agree with fp32's on at least ``min_agreement`` of the
texts. ``auto`` serves the fastest that passed.

int8 went through ``torch.ao.quantization.quantize_dynamic`` until 2026-12-07
(deprecated in torch 2.13 in favour of torchao, whose fast CPU path needs
``torch.compile``); ONNX Runtime's dynamic quantisation replaced it.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np
from sklearn.metrics import f1_score

from core.platform.config import SERVING_PRECISIONS
from core.platform.hardware import cpu_kind, cpu_model_name, cpu_supports_bf16

PRECISIONS = SERVING_PRECISIONS
ONNX_PRECISIONS = ("onnx-fp32", "onnx-int8")
VARIANT_TITLES = {"fp32": "PyTorch float32", "bf16": "PyTorch bfloat16", "onnx-fp32": "ONNX Runtime float32",
                  "onnx-int8": "ONNX Runtime int8", "int8": "PyTorch int8 (retired)"}
#: Variants no longer made: a run that chose one is served at fp32.
RETIRED = ("int8",)
#: Validation texts timed per variant (quality always uses them all).
SPEED_SAMPLE = 256
#: Faster first when speeds tie; measured speeds decide otherwise.
PREFERENCE = ("onnx-int8", "bf16", "onnx-fp32", "fp32")


def reduced_copy(model: Any, precision: str) -> Any:
    """A copy of a torch model at a PyTorch ``precision`` (fp32: the model itself, untouched)."""
    import torch

    if precision == "fp32":
        return model
    if precision == "bf16":
        return copy.deepcopy(model).float().cpu().eval().to(torch.bfloat16)
    raise ValueError(f"{precision!r} is not a PyTorch precision; choose fp32 or bf16")


def available_precisions() -> list[str]:
    """fp32 always; bf16 where the CPU has native bfloat16 instructions; ONNX Runtime's where it is installed."""
    from core.models.runtimes import onnx_runtime_installed

    return (["fp32"] + (["bf16"] if cpu_supports_bf16() else [])
            + (list(ONNX_PRECISIONS) if onnx_runtime_installed() else []))


@dataclass
class PrecisionCheck:
    """Validation quality and speed of each variant, which passed, and which one ``auto`` serves."""

    accuracy: dict[str, float]
    texts_per_second: dict[str, float]
    passed: dict[str, bool]
    chosen: str
    max_accuracy_loss: float
    #: Validation macro-F1 per variant (what the tolerance judges), and the share of texts labelled as fp32 does.
    macro_f1: dict[str, float] = field(default_factory=dict)
    agreement: dict[str, float] = field(default_factory=dict)
    min_agreement: float = 0.0
    #: The CPU the speeds were measured on (name and kind).
    cpu: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "PrecisionCheck | None":
        """A check as a run recorded it (older runs lack the newer fields)."""
        if not data:
            return None
        return cls(**{name: data[name] for name in cls.__dataclass_fields__ if name in data})


def _timed(score: Callable[[list[str]], np.ndarray], sample: list[str]) -> float:
    """Texts per second scoring ``sample``, best of two passes."""
    timings = []
    for _ in range(2):
        started = time.perf_counter()
        score(sample)
        timings.append(time.perf_counter() - started)
    return len(sample) / min(timings) if min(timings) > 0 else 0.0


def check_precisions(use: Callable[[str], None], score: Callable[[list[str]], np.ndarray], texts: list[str],
                     label_ids: list[int], max_accuracy_loss: float, min_agreement: float = 0.0,
                     precisions: list[str] | None = None) -> PrecisionCheck:
    """Score the validation texts with each variant; keep those within ``max_accuracy_loss`` of fp32's macro-F1
    whose labels agree with fp32's on at least ``min_agreement`` of the texts; choose the fastest kept.

    ``use(precision)`` switches the model (not timed); ``score(texts)`` returns the score matrix.
    Quality uses every text; speed is timed on at most ``SPEED_SAMPLE`` of them (best of two passes),
    so the check stays cheap on large validation splits.
    """
    truth = np.asarray(label_ids)
    sample = texts[:SPEED_SAMPLE]
    labels, accuracy, macro_f1, speed = {}, {}, {}, {}
    for precision in ["fp32", *[p for p in precisions or available_precisions() if p != "fp32"]]:
        use(precision)
        labels[precision] = score(texts).argmax(axis=1)  # also warms the variant up
        accuracy[precision] = float((labels[precision] == truth).mean()) if len(truth) else 0.0
        macro_f1[precision] = float(f1_score(truth, labels[precision], average="macro")) if len(truth) else 0.0
        speed[precision] = _timed(score, sample)
    agreement = {p: float((labels[p] == labels["fp32"]).mean()) if len(truth) else 1.0 for p in labels}
    passed = {p: macro_f1["fp32"] - macro_f1[p] <= max_accuracy_loss + 1e-12 and agreement[p] >= min_agreement - 1e-12
              for p in labels}
    candidates = [p for p in PREFERENCE if passed.get(p)]
    chosen = max(candidates, key=lambda p: (speed[p], -PREFERENCE.index(p)))
    return PrecisionCheck(accuracy, speed, passed, chosen, max_accuracy_loss, macro_f1, agreement, min_agreement,
                          this_cpu())


def this_cpu() -> str:
    """This machine's CPU as a check records it: its name and kind."""
    return f"{cpu_model_name()} ({cpu_kind()})"
