"""torchrun awareness: rank, world size and the process group, read from torchrun's environment.

There is no launcher here: run ``torchrun --nproc-per-node N -m metashot.cli ...`` (or the
``metashot`` script). Without torchrun's variables everything reports a single process.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    """True when launched by torchrun with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else int(os.environ.get("RANK", "0"))


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    """Only rank 0 writes checkpoints, logs and progress bars."""
    return rank() == 0


def init_process_group(device: torch.device) -> None:
    """Initialise the default process group from torchrun's environment (NCCL on CUDA, gloo on CPU).

    A no-op when not launched by torchrun or when already initialised.
    """
    if not is_distributed() or dist.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend=backend)


def all_reduce_mean_(tensors: list[torch.Tensor]) -> None:
    """Average ``tensors`` in place across ranks (no-op on one process)."""
    if not (dist.is_available() and dist.is_initialized()) or world_size() == 1:
        return
    for t in tensors:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        t.div_(world_size())
