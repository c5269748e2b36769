"""Several processes training one run together (``torchrun`` / ``accelerate launch``, data parallel).

The launcher starts the same command in every process and tells each one its place through the
environment (RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE). Rank 0, the main process, is the only
one that reads the input, writes dataset versions and run records, tests and saves models; it hands
what it decided to the others with :func:`share_from_main`. Without those variables (the app, the
worker, the tests) every function here is a no-op and the process is its own main process.

Two process groups: the default one (gloo for CPU tensors, NCCL for CUDA ones) carries the
``Trainer``'s collectives with torch's usual timeout; a second gloo group carries rank 0's messages,
with a long timeout, because the others wait there for as long as rank 0 ingests, plans, tests and
saves. Sending Python objects over a gloo group needs no GPU and no device placement.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Iterator, TypeVar

if TYPE_CHECKING:
    from core.platform.config import AppConfig

T = TypeVar("T")

#: How long the other processes wait for rank 0's next message (ingesting, planning, testing, saving).
MESSAGE_TIMEOUT = timedelta(hours=12)


class OthersUnreachable(RuntimeError):
    """Rank 0 tried to message the others while they may still be inside a step that failed here."""


#: The message group while :func:`process_group` is open, and whether the others wait for a message.
_state: dict[str, Any] = {"group": None, "others_listening": True}


def _env_int(name: str, default: int) -> int:
    """An integer the launcher set, or ``default`` without a launcher."""
    return int(os.environ.get(name) or default)


def rank() -> int:
    """This process's place among all of them (0 without a launcher): decides who reads and writes."""
    return _env_int("RANK", 0)


def local_rank() -> int:
    """This process's place on this machine: picks its GPU."""
    return _env_int("LOCAL_RANK", 0)


def world_size() -> int:
    """How many processes train together (1 without a launcher)."""
    return _env_int("WORLD_SIZE", 1)


def local_world_size() -> int:
    """How many of them run on this machine, sharing its cores."""
    return _env_int("LOCAL_WORLD_SIZE", 1)


def is_distributed() -> bool:
    """Whether other processes train with this one (and must be kept in step)."""
    return world_size() > 1


def is_main() -> bool:
    """Whether this process is rank 0, the one that writes."""
    return rank() == 0


def _default_backend() -> str:
    """gloo for CPU tensors, plus NCCL for CUDA ones where there is a GPU (training may still fall back to the CPU)."""
    import torch

    if not torch.cuda.is_available():
        return "gloo"
    torch.cuda.set_device(local_rank() % torch.cuda.device_count())  # "cuda" then means this rank's GPU
    return "cpu:gloo,cuda:nccl"


@contextmanager
def process_group() -> Iterator[None]:
    """Connect to the other processes for the body (the Trainer then reuses the group) and disconnect after."""
    if not is_distributed():
        yield
        return
    import torch.distributed as dist

    dist.init_process_group(_default_backend())
    _state["group"], _state["others_listening"] = dist.new_group(backend="gloo", timeout=MESSAGE_TIMEOUT), True
    try:
        yield
    finally:
        _state["group"] = None
        dist.destroy_process_group()


def share_from_main(value: T) -> T:
    """Rank 0's ``value`` on every process (the others' own is ignored): how rank 0's decisions reach them."""
    if not is_distributed():
        return value
    if _state["group"] is None:
        raise RuntimeError("share_from_main needs an open distributed.process_group()")
    if is_main() and not _state["others_listening"]:
        raise OthersUnreachable("the other processes are still inside a step that failed here")
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0, group=_state["group"])
    return box[0]


@contextmanager
def all_ranks() -> Iterator[None]:
    """A step every process runs (a fit), ending at a barrier so rank 0 cleans up only after all are done.

    If the body raises here, the others stay inside its collectives: rank 0 then sends them nothing
    more (:func:`others_listening` is False) and exits non-zero, and the launcher stops them.
    """
    if not is_distributed():
        yield
        return
    import torch.distributed as dist

    _state["others_listening"] = False
    yield
    dist.barrier(group=_state["group"])
    _state["others_listening"] = True


def others_listening() -> bool:
    """Whether the other processes wait for rank 0's next message (False after a step that failed midway)."""
    return _state["others_listening"]


def processes_for(requested: int) -> int:
    """A process count as configured: 0 means one per GPU (one where there is none)."""
    if requested > 0:
        return requested
    import torch

    return torch.cuda.device_count() or 1


def resolved_processes(config: AppConfig) -> int:
    """How many processes train one transformer run under this configuration (``training.processes``)."""
    return processes_for(config.training.processes)


def launch_command(run_id: str, processes: int, config_path: str | None = None) -> list[str]:
    """The argv a worker runs to train a queued run in ``processes`` processes on this machine (0: one per GPU).

    ``--standalone`` lets torchrun pick a free port itself, so two launches never collide; the
    workspace comes from the environment (FEEDBACK_STUDIO_WORKSPACE) or the configuration file.
    """
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", str(processes_for(processes)), "-m", "core", "train-run", run_id]
    return command + (["--config", str(config_path)] if config_path else [])
