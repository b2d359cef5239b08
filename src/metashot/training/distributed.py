"""torchrun awareness and DistributedDataParallel machinery shared by every trainer.

There is no launcher here: run ``torchrun --nproc-per-node N -m metashot.cli ...`` (or the
``metashot`` script). Without torchrun's variables everything reports a single process and every
helper below is a cheap no-op, so a trainer written against :class:`DistContext` runs unchanged on one
process.

The recipe a trainer follows (see :mod:`metashot.fewshot.train`)::

    with process_group(resolve_device(args.device)) as ctx:   # torchrun's env; torn down on exit
        model = build(...).to(ctx.device)
        ddp = wrap_ddp(model, ctx)                      # forward through ``ddp``, save ``model``
        batch = sampler.sample(ctx.world_size * n)      # the SAME global batch on every rank ...
        mine = shard(batch, ctx.rank, ctx.world_size)   # ... of which each rank takes rows r, r+W, ...
        ...
        rng = gather_rng_states(ctx, generators)        # rank 0 saves every rank's RNG state
        if ctx.is_main: save_checkpoint(...)
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import Tensor, nn

from metashot.errors import CheckpointError

T = TypeVar("T")


def is_distributed() -> bool:
    """True when launched by torchrun with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def _initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if _initialized() else int(os.environ.get("RANK", "0"))


def world_size() -> int:
    return dist.get_world_size() if _initialized() else int(os.environ.get("WORLD_SIZE", "1"))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main_process() -> bool:
    """Only rank 0 writes checkpoints, logs and progress bars."""
    return rank() == 0


def init_process_group(device: torch.device) -> None:
    """Initialise the default process group from torchrun's environment (NCCL on CUDA, gloo on CPU).

    A no-op when not launched by torchrun or when already initialised.
    """
    if not is_distributed() or _initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(local_rank())
    dist.init_process_group(backend=backend)


def all_reduce_mean_(tensors: list[torch.Tensor]) -> None:
    """Average ``tensors`` in place across ranks (no-op on one process)."""
    if not _initialized() or world_size() == 1:
        return
    for t in tensors:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        t.div_(world_size())


# --- the context a trainer carries ------------------------------------------------------------------


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: ``rank`` of ``world_size``, its ``device`` (``cuda:LOCAL_RANK`` on
    GPUs), and ``is_main`` (rank 0: the only writer of checkpoints, metrics and progress bars)."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup(device: torch.device) -> DistContext:
    """Initialise the process group from torchrun's environment (gloo on CPU, NCCL on CUDA) and return
    this process's :class:`DistContext`. On one process: no process group, ``rank 0 of 1``.

    On CUDA each process uses ``cuda:LOCAL_RANK`` (one GPU per process, as ``torchrun`` expects).
    """
    if is_distributed() and device.type == "cuda":
        device = torch.device("cuda", local_rank())
    init_process_group(device)
    return DistContext(rank=rank(), world_size=world_size(), local_rank=local_rank(), device=device)


def cleanup(ctx: DistContext | None = None) -> None:
    """Tear the process group down (safe to call twice, or on one process)."""
    if _initialized():
        dist.destroy_process_group()


@contextlib.contextmanager
def process_group(device: torch.device) -> Iterator[DistContext]:
    """``with process_group(device) as ctx:`` :func:`setup` on entry, :func:`cleanup` on exit (also on errors)."""
    ctx = setup(device)
    try:
        yield ctx
    except BaseException:
        cleanup(ctx)  # no barrier: the other ranks may never arrive
        raise
    # On success every rank meets before the group is torn down, so no rank destroys its gloo pairs
    # while a peer is still using them (a rank doing that could abort at exit with "terminate called
    # without an active exception" under load).
    barrier(ctx)
    cleanup(ctx)


def barrier(ctx: DistContext | None = None) -> None:
    """Wait for every rank (no-op on one process)."""
    if _initialized() and world_size() > 1:
        dist.barrier()


def wrap_ddp(model: nn.Module, ctx: DistContext, **kwargs: Any) -> nn.Module:
    """``DistributedDataParallel(model)`` when distributed, else ``model`` itself.

    DDP broadcasts rank 0's parameters and buffers at construction (so every rank starts identical)
    and averages the gradients over ranks in ``backward``. Keep a handle on the unwrapped ``model`` to
    save its ``state_dict`` (no ``module.`` prefix), so checkpoints load on any world size.
    """
    if not ctx.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids, **kwargs)


@contextlib.contextmanager
def no_sync(model: nn.Module, skip: bool = True) -> Iterator[None]:
    """Skip DDP's gradient all-reduce inside the block when ``skip`` (gradient accumulation);
    a no-op for an unwrapped model."""
    if skip and hasattr(model, "no_sync"):
        with model.no_sync():  # type: ignore[operator]
            yield
    else:
        yield


def shard(batch: T, rank: int, world: int) -> T:
    """Rows ``rank, rank + world, rank + 2 * world, ...`` of ``batch`` (a tensor or a sequence).

    Every rank draws the same global batch from identically seeded generators and keeps its strided
    share: the ranks see disjoint items, and together exactly the batch one process would draw.
    """
    if world == 1:
        return batch
    return batch[rank::world]  # type: ignore[index]


def shard_indices(n: int, rank: int, world: int) -> range:
    """The indices ``rank, rank + world, ...`` below ``n`` that a rank owns (e.g. evaluation episodes)."""
    return range(rank, n, world)


def broadcast_object(obj: T, ctx: DistContext | None = None, src: int = 0) -> T:
    """Rank ``src``'s ``obj`` on every rank (picklable objects; the identity on one process)."""
    if not _initialized() or world_size() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def gather_objects(obj: T, ctx: DistContext | None = None) -> list[T]:
    """Every rank's ``obj``, in rank order, on every rank (``[obj]`` on one process)."""
    if not _initialized() or world_size() == 1:
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def any_rank(flag: bool, ctx: DistContext | None = None) -> bool:
    """True on every rank when ``flag`` is true on any rank (e.g. a time budget that ran out on one);
    keeps the ranks stepping in lockstep instead of deadlocking in the next all-reduce."""
    if not _initialized() or world_size() == 1:
        return bool(flag)
    t = torch.tensor([1.0 if flag else 0.0], device=_collective_device())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def _collective_device() -> torch.device:
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


# --- per-rank RNG state in a checkpoint -------------------------------------------------------------


def rng_group(rank: int) -> str:
    """Checkpoint group holding rank ``rank``'s RNG state: ``rng`` for rank 0 (so a single-process
    checkpoint has the usual layout), ``rng-rank1``, ``rng-rank2``, ... for the others."""
    return "rng" if rank == 0 else f"rng-rank{rank}"


def gather_rng_states(ctx: DistContext, state: dict[str, Tensor]) -> dict[str, dict[str, Tensor]]:
    """Collect every rank's RNG ``state`` (from :func:`~metashot.training.capture_rng_state`) as
    checkpoint tensor groups ``{rng_group(r): state_r}``. Collective: call it on every rank; only
    rank 0's return value is meant to be saved."""
    states = gather_objects({k: v.cpu() for k, v in state.items()}, ctx)
    return {rng_group(r): s for r, s in enumerate(states)}


def check_world_size(saved: int, ctx: DistContext, where: str) -> None:
    """Refuse to resume a run written by ``saved`` processes on a different number of processes:
    the episode shards and every rank's RNG state are tied to the world size."""
    if saved != ctx.world_size:
        hint = (
            f"torchrun --nproc-per-node {saved} ..." if saved > 1 else "a single process (without torchrun)"
        )
        raise CheckpointError(
            f"{where} was written by {saved} process(es) but this run has {ctx.world_size}; "
            f"resume it with {hint}, or start a new --out"
        )
