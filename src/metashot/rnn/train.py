"""Training loop for the Phased LSTM tasks: epochs of freshly generated sequences, Adam, a test
evaluation after every epoch (the paper's accuracy-vs-epoch curve), exact resume.

Run folder: ``config.json``, ``metrics.jsonl`` (one record per epoch: ``epoch``, ``test_accuracy``,
``train_loss``, ...), ``latest`` -> ``checkpoint-NNNNNNNN/`` (model, optimizer, RNG states).

Distributed (``torchrun --nproc-per-node N -m metashot.cli rnn train ...``): ``batch_size`` stays the
**global** batch. Every rank draws the same batch of ``batch_size`` sequences from the identically
seeded training stream and keeps rows ``rank, rank + N, ...`` (so ``batch_size`` must be divisible by
N); the model is wrapped in DistributedDataParallel, which averages the gradients, so a step is the
step one process takes on the whole batch (up to float summation order). The per-epoch test set is
split between the ranks by batch. Only rank 0 writes checkpoints, metrics and the progress bar; the
checkpoint keeps every rank's RNG state and a run resumes only on the world size that wrote it. See
docs/distributed.md.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from metashot.config import from_dict, to_dict
from metashot.errors import CheckpointError, UsageError
from metashot.rnn.config import TrainConfig
from metashot.rnn.evaluate import _loss_and_hits, build_model, evaluate_model, for_evaluation, test_set
from metashot.rnn.tasks import SequenceBatch
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


def _save(out: Path, config: TrainConfig, model: nn.Module, optimizer: torch.optim.Optimizer,
          rng: dict[str, dict[str, torch.Tensor]], state: dict[str, Any], keep: int) -> None:
    save_checkpoint(
        out,
        config=to_dict(config),
        tensors={
            "model": model.state_dict(),
            "optimizer": optimizer_tensors(optimizer.state_dict()),
            **rng,
        },
        state=state,
        keep=keep,
    )


def _shard_batch(batch: SequenceBatch, index: int, shards: int) -> SequenceBatch:
    """Rows ``index, index + shards, ...`` of every field (the padded length stays the global one)."""
    return SequenceBatch(*(distrib.shard(t, index, shards) for t in batch))


def evaluate_sharded(
    model: nn.Module, config: TrainConfig, batches: list[SequenceBatch], device: torch.device,
    ctx: distrib.DistContext,
) -> dict[str, Any]:
    """:func:`~metashot.rnn.evaluate.evaluate_model` with the test batches split between the ranks
    (batch ``i`` on rank ``i % world_size``); every rank returns the totals over all batches.

    On one process it *is* ``evaluate_model``. Distributed, the per-batch results are recombined in
    batch order: counts are exact, the loss and openness means equal one process's up to float rounding.
    Collective: call it on every rank.
    """
    if not ctx.distributed:
        return evaluate_model(model, config, batches, device)
    model = for_evaluation(model, config, device)  # once, not once per batch
    mine = [(i, evaluate_model(model, config, [batches[i]], device, recalibrated=True))
            for i in distrib.shard_indices(len(batches), ctx.rank, ctx.world_size)]
    parts = sorted((p for per_rank in distrib.gather_objects(mine, ctx) for p in per_rank), key=lambda p: p[0])
    total = sum(r["examples"] for _, r in parts)
    result: dict[str, Any] = {
        "accuracy": sum(round(r["accuracy"] * r["examples"]) for _, r in parts) / max(total, 1),
        "loss": sum(r["loss"] * r["examples"] for _, r in parts) / max(total, 1),
        "examples": total,
    }
    if any("open_update_fraction" in r for _, r in parts):
        # evaluate_model's denominator: real steps x layers x hidden units
        weights = [int(batches[i].lengths.sum()) * config.model.num_layers * config.model.hidden_size for i, _ in parts]
        updates = sum(weights)
        result["open_update_fraction"] = sum(w * r["open_update_fraction"] for w, (_, r) in zip(weights, parts)) / updates
        result["mean_openness"] = sum(w * r["mean_openness"] for w, (_, r) in zip(weights, parts)) / updates
    return result


def train(
    config: TrainConfig,
    out: str | os.PathLike[str],
    *,
    resume: bool = False,
    max_steps: int | None = None,
    max_minutes: float | None = None,
    device: str = "auto",
    show_progress: bool = True,
    keep: int = 2,
    accumulate: int = 1,
) -> dict[str, Any]:
    """Train ``config`` into run folder ``out``; return a summary (last epoch's test metrics).

    Args:
        resume: continue from the checkpoint in ``out`` (its stored config wins). Without a
            checkpoint there, training starts from scratch.
        max_steps: stop (and checkpoint) once this many optimizer steps are done in total.
        max_minutes: stop (and checkpoint) once this much wall time has passed in this call.
        accumulate: split each process's share of the batch into this many micro-batches (gradient
            accumulation; one optimizer step still covers ``batch_size`` sequences). One process with
            ``accumulate=N`` does what ``N`` processes do, batch-norm statistics (``bnlstm``) included.

    Under ``torchrun`` the ``N`` processes share every batch (see the module docstring);
    ``batch_size`` must be divisible by ``N * accumulate``.
    """
    with distrib.process_group(resolve_device(device)) as ctx:
        return _train(config, Path(out), resume=resume, max_steps=max_steps, max_minutes=max_minutes, ctx=ctx,
                      show_progress=show_progress, keep=keep, accumulate=accumulate)


def _train(
    config: TrainConfig,
    out: Path,
    *,
    resume: bool,
    max_steps: int | None,
    max_minutes: float | None,
    ctx: distrib.DistContext,
    show_progress: bool,
    keep: int,
    accumulate: int,
) -> dict[str, Any]:
    if accumulate < 1:
        raise UsageError(f"accumulate must be >= 1, got {accumulate}")
    dev = ctx.device
    shards = ctx.world_size * accumulate  # each batch is cut into this many strided shards
    budget = TimeBudget(max_minutes)
    metrics = MetricsLogger(out / "metrics.jsonl", enabled=ctx.is_main)
    checkpoint = None
    if has_checkpoint(out):
        if not resume:
            raise UsageError(f"{out} already holds a checkpoint; pass --resume to continue it or choose another --out")
        checkpoint = load_checkpoint(out, map_location="cpu")
        distrib.check_world_size(int(checkpoint.state.get("world_size", 1)), ctx, str(out))
        saved_accumulate = int(checkpoint.state.get("accumulate", 1))
        if saved_accumulate != accumulate:
            raise CheckpointError(f"{out} was trained with accumulate={saved_accumulate}, not {accumulate}")
        stored = from_dict(TrainConfig, checkpoint.config)
        if stored != config and ctx.is_main:
            log.info("resuming with the stored config of %s (flags that differ are ignored)", out)
        config = stored
    elif resume and ctx.is_main:
        log.info("%s has no checkpoint yet: starting from scratch", out)
    if config.batch_size % shards:
        who = f"{ctx.world_size} processes" + (f" x {accumulate} micro-batches" if accumulate > 1 else "")
        raise UsageError(
            f"--batch-size {config.batch_size} is the global batch and must split evenly into {who}; "
            f"use a multiple of {shards} (e.g. {config.batch_size + shards - config.batch_size % shards})"
        )

    seed_everything(config.seed)
    model = build_model(config).to(dev)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(config.seed + 1)  # the training-data stream
    state: dict[str, Any] = {"step": 0, "epoch": 0, "elapsed_seconds": 0.0}
    if shards > 1:
        state.update(world_size=ctx.world_size, accumulate=accumulate, global_batch=config.batch_size,
                     batch_per_process=config.batch_size // ctx.world_size)
    if checkpoint is not None:
        model.load_state_dict(checkpoint.group("model"))
        optimizer.load_state_dict(load_optimizer_tensors(checkpoint.group("optimizer")))
        restore_rng_state(checkpoint.group(distrib.rng_group(ctx.rank)), {"data": generator})
        state.update(checkpoint.state)
        metrics.truncate_after(int(state["step"]))
        distrib.barrier(ctx)  # nobody writes (or prunes) a checkpoint before every rank has read this one
    elif ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
        if (out / "metrics.jsonl").exists():
            (out / "metrics.jsonl").unlink()
    net = distrib.wrap_ddp(model, ctx)  # forward through ``net``; save and evaluate ``model``
    if shards > 1 and ctx.is_main:
        log.info(
            "%d processes x %d micro-batches x %d sequences = %d sequences per optimizer step "
            "(--batch-size is the global batch)",
            ctx.world_size, accumulate, config.batch_size // shards, config.batch_size,
        )

    task = config.task.build()
    evaluation = test_set(config, config.eval_examples)
    steps_per_epoch = config.steps_per_epoch
    total = config.epochs * steps_per_epoch
    step = int(state["step"])
    saved_step = step if checkpoint is not None else None
    started = time.monotonic() - float(state.get("elapsed_seconds", 0.0))
    last: dict[str, Any] = {}
    if step == 0:  # the curve starts at epoch 0 (untrained)
        last = evaluate_sharded(model, config, evaluation, dev, ctx)
        metrics.log(0, epoch=0, **{f"test_{k}": v for k, v in last.items()}, elapsed_seconds=0.0)

    def snapshot() -> None:
        nonlocal saved_step
        state.update(step=step, epoch=step // steps_per_epoch, elapsed_seconds=time.monotonic() - started)
        rng = distrib.gather_rng_states(ctx, capture_rng_state({"data": generator}))  # collective
        if ctx.is_main:
            _save(out, config, model, optimizer, rng, state, keep)
        saved_step = step
        distrib.barrier(ctx)

    model.train()
    bar = progress(total=total, initial=step, desc=f"{config.model.model} {task.name}",
                   disable=not (show_progress and ctx.is_main))
    loss_sum, hits, seen = 0.0, 0, 0
    try:
        while step < total:
            batch = task.batch(config.batch_size, generator)  # the same global batch on every rank
            optimizer.zero_grad(set_to_none=True)
            if shards == 1:
                batch = batch.to(dev)
                loss, correct = _loss_and_hits(net, task, batch)
                check_finite(step, {"loss": loss})
                loss.backward()
                step_loss, step_hits, step_seen = loss.item() * len(correct), int(correct.sum()), len(correct)
            else:
                # micro-batch j of this rank is shard ``rank + j * world_size`` of ``shards``
                sums = torch.zeros(3, dtype=torch.float64)  # loss * n, hits, n over this rank's shards
                for j in range(accumulate):
                    part = _shard_batch(batch, ctx.rank + j * ctx.world_size, shards).to(dev)
                    with distrib.no_sync(net, skip=j < accumulate - 1):
                        loss, correct = _loss_and_hits(net, task, part)
                        (loss / accumulate if accumulate > 1 else loss).backward()
                    sums += torch.tensor([loss.item() * len(correct), int(correct.sum()), len(correct)],
                                         dtype=torch.float64)
                distrib.all_reduce_mean_([sums])  # the whole batch's totals (/ world size) on every rank
                step_loss, step_hits, step_seen = (float(sums[0]) * ctx.world_size,
                                                   round(float(sums[1]) * ctx.world_size), config.batch_size)
                check_finite(step, {"loss": step_loss / step_seen})  # the same verdict on every rank
            if config.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            model.constrain_()  # keep tau > 0 and 0 < r_on <= 1
            step += 1
            loss_sum += step_loss
            hits += step_hits
            seen += step_seen
            bar.update(1)
            if step % steps_per_epoch == 0:
                last = evaluate_sharded(model, config, evaluation, dev, ctx)
                epoch = step // steps_per_epoch
                metrics.log(
                    step, epoch=epoch, train_loss=loss_sum / seen, train_accuracy=hits / seen,
                    **{f"test_{k}": v for k, v in last.items()}, elapsed_seconds=time.monotonic() - started,
                    **({"world_size": ctx.world_size, "global_batch": config.batch_size} if shards > 1 else {}),
                )
                bar.set_postfix(epoch=epoch, test_acc=f"{last['accuracy']:.3f}", loss=f"{loss_sum / seen:.3f}")
                loss_sum, hits, seen = 0.0, 0, 0
                snapshot()
            if max_steps is not None and step >= max_steps:
                break
            if distrib.any_rank(budget.expired(), ctx) if max_minutes is not None else False:
                if ctx.is_main:
                    log.info("time budget of %s minutes spent at step %d; checkpointing", max_minutes, step)
                break
    finally:
        bar.close()
    if saved_step != step:
        snapshot()
    return {"step": step, "epoch": step // steps_per_epoch, "finished": step >= total,
            **{f"test_{k}": v for k, v in last.items()}}
