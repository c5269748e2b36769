"""Training on several processes (``torchrun`` / ``accelerate launch``): which process this is, and the
hand-over between the main process, which runs a command, and the others, which train its runs with it."""

from __future__ import annotations

from core.platform.distributed import is_distributed, is_main, process_group, rank
from core.training.execution import follow_main, stop_followers

__all__ = ["follow_main", "is_distributed", "is_main", "process_group", "rank", "stop_followers"]
