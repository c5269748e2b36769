"""Which device trains and predicts, how many CPU threads, which precision."""

from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass
from typing import Any

from core.platform.distributed import local_world_size


@dataclass(frozen=True)
class Hardware:
    device: str  # cuda | mps | cpu
    name: str
    cpu_threads: int
    bf16: bool

    def describe(self) -> str:
        """A sentence for people: what trains and how."""
        precision = "bfloat16 mixed precision" if self.bf16 else "float32"
        where = self.name if self.device != "cpu" else f"the CPU ({self.cpu_threads} threads)"
        return f"Training on {where} with {precision}."

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def cpu_supports_bf16() -> bool:
    """True when the CPU has native bfloat16 arithmetic (AVX-512 BF16 or AMX)."""
    import torch

    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def usable_cores() -> int:
    """Cores this process may run on (a container or ``taskset`` may allow fewer than the machine has)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def configure_cpu_threads(requested: int = 0) -> int:
    """Use every core this process may run on (its share when torchrun starts several here) unless told otherwise;
    returns the thread count in force."""
    import torch

    threads = requested if requested > 0 else max(1, usable_cores() // local_world_size())
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads


def detect_hardware(cpu_threads: int = 0, precision: str = "auto", force_cpu: bool = False) -> Hardware:
    """The best available device: CUDA, then Apple MPS, then the CPU."""
    import torch

    threads = configure_cpu_threads(cpu_threads)
    if not force_cpu and torch.cuda.is_available():
        bf16 = precision in ("auto", "bf16") and torch.cuda.is_bf16_supported()
        return Hardware("cuda", torch.cuda.get_device_name(0), threads, bf16)
    if not force_cpu and torch.backends.mps.is_available():
        return Hardware("mps", "Apple GPU (MPS)", threads, False)
    bf16 = precision == "bf16" or (precision == "auto" and cpu_supports_bf16())
    return Hardware("cpu", platform.processor() or platform.machine(), threads, bf16)


#: The CPU features that decide training and inference speed here (bfloat16 and int8 kernels).
CPU_FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16")


def cpu_features() -> dict[str, bool]:
    """Which of CPU_FEATURES this CPU has (from /proc/cpuinfo; all False where it cannot be read)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            flags = next((line.split(":", 1)[1].split() for line in handle if line.startswith("flags")), [])
    except OSError:
        flags = []
    return {name: name in flags for name in CPU_FEATURES}


def cpu_model_name() -> str:
    """The CPU's name as /proc/cpuinfo gives it ("unknown" where it cannot be read)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            return next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")),
                        "unknown")
    except OSError:
        return "unknown"


def cpu_kind() -> str:
    """The CPU kind benchmarks name their targets by: "avx512-bf16", "avx512", "avx2" or "other"."""
    features = cpu_features()
    if features["avx512f"]:
        return "avx512-bf16" if features["avx512_bf16"] or features["amx_bf16"] else "avx512"
    return "avx2" if features["avx2"] else "other"
