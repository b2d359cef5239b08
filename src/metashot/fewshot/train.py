"""Episodic training (Vinyals et al. 2016, Section 2.2) and the baseline classifier's training.

The training images live on the device as one uint8 tensor; each step draws the indices of a batch
of episodes in one vectorised call (:meth:`EpisodeSampler.sample`), gathers the images by indexing,
and runs support and query of all episodes through the conv net in **one** forward pass. No Python
loop over images, no PIL in the hot path, and no host synchronisation except every ``log_every``
steps.

Distributed (``torchrun --nproc-per-node N metashot fewshot train ...``): the model is wrapped in
DistributedDataParallel; every rank draws the same global batch of ``N * episodes_per_step`` episodes
from identically seeded generators and keeps rows ``rank, rank + N, ...`` of it, so the ranks see
disjoint episodes and one optimizer step averages the gradients of ``N * episodes_per_step`` episodes
(exactly what one process with ``accumulate=N`` computes). Only rank 0 writes checkpoints, metrics
and the progress bar; the checkpoint keeps every rank's RNG state and refuses another world size on
resume. See docs/distributed.md.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from metashot.config import from_dict, to_dict
from metashot.data.omniglot import load_omniglot
from metashot.errors import CheckpointError, UsageError
from metashot.fewshot.config import TrainConfig
from metashot.fewshot.episodes import EpisodeSampler, episode_from_indices
from metashot.fewshot.registry import build_model
from metashot.training import (
    MetricsLogger,
    TimeBudget,
    capture_rng_state,
    check_finite,
    has_checkpoint,
    load_checkpoint,
    progress,
    resolve_device,
    restore_rng_state,
    save_checkpoint,
    seed_everything,
)
from metashot.training import distributed as distrib
from metashot.training.checkpoint import load_optimizer_tensors, optimizer_tensors

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What a training call did."""

    out: Path
    step: int
    loss: float
    accuracy: float
    seconds: float
    episodes_per_second: float
    stopped_early: bool
    world_size: int = 1
    global_episodes_per_step: int = 1


def learning_rate(config: TrainConfig, step: int) -> float:
    """Step decay: ``lr * lr_decay ** (step // lr_decay_every)`` (stateless, so resume is exact)."""
    return config.lr * config.lr_decay ** (step // config.lr_decay_every)


def _comparable(config: dict) -> dict:
    return {k: v for k, v in config.items() if k not in ("steps", "log_every", "checkpoint_every")}


def train(
    config: TrainConfig,
    *,
    out: str | os.PathLike[str],
    resume: bool = False,
    max_steps: int | None = None,
    max_minutes: float | None = None,
    device: str = "auto",
    show_progress: bool = True,
    data_dir: str | None = None,
    accumulate: int = 1,
) -> TrainResult:
    """Train ``config`` into the run folder ``out``; checkpoint every ``checkpoint_every`` steps and at
    the end (also when ``max_minutes`` runs out). ``max_steps`` caps the total step count.

    Under ``torchrun`` each of the ``W`` processes trains on its share of every step's global batch
    (see the module docstring). ``accumulate = A`` splits each process's share into ``A`` micro-batches
    (gradient accumulation: A forward/backward passes per optimizer step, each over
    ``episodes_per_step`` episodes), so a step averages ``W * A * episodes_per_step`` episodes; one
    process with ``accumulate=W`` reproduces a ``W``-process run (batch-norm statistics included).
    """
    with distrib.process_group(resolve_device(device)) as ctx:
        return _train(config, out=Path(out), resume=resume, max_steps=max_steps, max_minutes=max_minutes,
                      ctx=ctx, show_progress=show_progress, data_dir=data_dir, accumulate=accumulate)


def _train(
    config: TrainConfig,
    *,
    out: Path,
    resume: bool,
    max_steps: int | None,
    max_minutes: float | None,
    ctx: distrib.DistContext,
    show_progress: bool,
    data_dir: str | None,
    accumulate: int,
) -> TrainResult:
    if accumulate < 1:
        raise UsageError(f"accumulate must be >= 1, got {accumulate}")
    budget = TimeBudget(max_minutes)
    dev = ctx.device
    shards = ctx.world_size * accumulate  # the global batch is cut into this many strided shards
    if has_checkpoint(out) and not resume:
        raise UsageError(f"{out} already holds a checkpoint; pass --resume to continue it, or choose another --out")
    seed_everything(config.seed)
    if dev.type == "cuda":  # fixed shapes: let cuDNN pick the fastest kernels; TF32 matmuls
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
    dataset = load_omniglot(config.train_part, split=config.split, root=data_dir)
    if config.model.method == "baseline":
        config = replace(config, model=replace(config.model, num_classes=dataset.num_classes))
    model = build_model(config.model).to(dev)
    if config.model.method == "baseline":
        net = distrib.wrap_ddp(_Classifier(model), ctx)
    else:
        net = distrib.wrap_ddp(model, ctx)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(config.seed)
    ep = config.episodes
    sampler = EpisodeSampler(
        dataset.labels, ep.n_way, ep.n_shot, ep.n_query, config.steps, generator=generator, class_names=dataset.class_names
    )
    step = 0
    logger = MetricsLogger(out / "metrics.jsonl", enabled=ctx.is_main)
    if resume and has_checkpoint(out):
        ckpt = load_checkpoint(out, map_location="cpu")
        saved = from_dict(TrainConfig, ckpt.config)
        old, new = _comparable(to_dict(saved)), _comparable(to_dict(config))
        if old != new:
            diff = ", ".join(f"{k}: saved {old[k]!r}, now {new.get(k)!r}" for k in old if old[k] != new.get(k))
            raise CheckpointError(f"{out}: cannot resume with a different config ({diff}); use the run's original options")
        model.load_state_dict(ckpt.group("model"))
        saved_world = int(ckpt.state.get("world_size", 1))
        distrib.check_world_size(saved_world, ctx, str(out))
        saved_accumulate = int(ckpt.state.get("accumulate", 1))
        if saved_accumulate != accumulate:
            raise CheckpointError(f"{out} was trained with accumulate={saved_accumulate}, not {accumulate}")
        optimizer.load_state_dict(load_optimizer_tensors(ckpt.group("optimizer")))
        restore_rng_state(ckpt.group(distrib.rng_group(ctx.rank)), {"episodes": generator})
        step = ckpt.step
        if ctx.is_main:
            logger.truncate_after(step)
        log.info("resumed %s at step %d", out, step)
        distrib.barrier(ctx)  # nobody starts writing before every rank has read the checkpoint
    per_step = config.episodes_per_step if config.model.method != "baseline" else config.batch_size
    if ctx.is_main and shards > 1:
        unit = "images" if config.model.method == "baseline" else "episodes"
        log.info(
            "%d processes x %d micro-batches x %d %s = %d %s per optimizer step",
            ctx.world_size, accumulate, per_step, unit, shards * per_step, unit,
        )
    last_step = config.steps if max_steps is None else min(config.steps, max_steps)
    images = dataset.images.to(dev)  # (N, 1, 28, 28) uint8, indexed on the device
    labels = dataset.labels.to(dev)

    def checkpoint() -> None:
        rng = distrib.gather_rng_states(ctx, capture_rng_state({"episodes": generator}))  # collective
        if ctx.is_main:
            save_checkpoint(
                out,
                config=to_dict(config),
                tensors={"model": model.state_dict(), "optimizer": optimizer_tensors(optimizer.state_dict()), **rng},
                state={
                    "step": step,
                    "train_classes": dataset.num_classes,
                    "train_images": len(dataset),
                    "world_size": ctx.world_size,
                    "accumulate": accumulate,
                    "global_episodes_per_step": shards * per_step,
                },
            )
        distrib.barrier(ctx)

    model.train()
    loss_sum = torch.zeros((), device=dev)
    acc_sum = torch.zeros((), device=dev)
    window = 0
    last_loss = last_acc = float("nan")
    start, start_step = time.perf_counter(), step
    bar = progress(
        total=last_step, initial=step, desc=f"train {config.model.method}", disable=not (show_progress and ctx.is_main)
    )
    stopped_early = False
    while step < last_step:
        if distrib.any_rank(budget.expired(), ctx) if max_minutes is not None else False:
            stopped_early = True
            log.info("time budget of %s minutes spent at step %d; checkpointing", max_minutes, step)
            break
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(config, step)
        # The same global batch on every rank (identically seeded generator); this rank's micro-batch
        # j is shard ``rank + j * world_size`` of ``shards`` strided shards.
        if config.model.method == "baseline":
            global_idx = torch.randint(len(dataset), (shards * config.batch_size,), generator=generator)
        else:
            global_idx = sampler.sample(shards * config.episodes_per_step)
        optimizer.zero_grad(set_to_none=True)
        loss = correct = torch.zeros((), device=dev)
        for j in range(accumulate):
            idx = distrib.shard(global_idx, ctx.rank + j * ctx.world_size, shards).to(dev, non_blocking=True)
            with distrib.no_sync(net, skip=j < accumulate - 1):
                if config.model.method == "baseline":
                    logits = net(images[idx].to(torch.float32).div_(255.0))
                    micro_loss = F.cross_entropy(logits, labels[idx])
                    micro_correct = (logits.argmax(-1) == labels[idx]).float().mean()
                else:
                    episode = episode_from_indices(images, idx, ep.n_shot)
                    log_probs = net(episode.support_images, episode.support_labels, episode.query_images, ep.n_way)
                    micro_loss = F.nll_loss(log_probs.flatten(0, -2), episode.query_labels.flatten())
                    micro_correct = (log_probs.argmax(-1) == episode.query_labels).float().mean()
                (micro_loss / accumulate if accumulate > 1 else micro_loss).backward()
            loss = loss + micro_loss.detach() / accumulate
            correct = correct + micro_correct.detach() / accumulate
        optimizer.step()
        step += 1
        loss_sum += loss.detach()
        acc_sum += correct.detach()
        window += 1
        bar.update(1)
        if step % config.log_every == 0 or step == last_step:
            distrib.all_reduce_mean_([loss_sum, acc_sum])  # collective: every rank logs the global mean
            last_loss, last_acc = float(loss_sum) / window, float(acc_sum) / window
            check_finite(step, {"loss": last_loss})
            elapsed = time.perf_counter() - start
            logger.log(
                step, loss=last_loss, accuracy=last_acc, lr=learning_rate(config, step - 1), seconds=round(elapsed, 2),
                **({"world_size": ctx.world_size, "global_batch": shards * per_step} if shards > 1 else {}),
            )
            bar.set_postfix(loss=f"{last_loss:.3f}", acc=f"{last_acc:.3f}")
            loss_sum.zero_()
            acc_sum.zero_()
            window = 0
        if step % config.checkpoint_every == 0 and step < last_step:
            checkpoint()
    bar.close()
    if window:
        distrib.all_reduce_mean_([loss_sum, acc_sum])
        last_loss, last_acc = float(loss_sum) / window, float(acc_sum) / window
        check_finite(step, {"loss": last_loss})
    checkpoint()
    seconds = time.perf_counter() - start
    # episodes (or baseline mini-batches) per second over all ranks together
    per_rate = shards * (config.episodes_per_step if config.model.method != "baseline" else 1)
    rate = (step - start_step) * per_rate / seconds if seconds > 0 else float("nan")
    return TrainResult(
        out, step, last_loss, last_acc, seconds, rate, stopped_early, ctx.world_size, shards * per_step
    )


class _Classifier(torch.nn.Module):
    """The baseline's ``classify`` as ``forward``, so DistributedDataParallel sees (and syncs) it."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.classify(images)  # type: ignore[operator]
