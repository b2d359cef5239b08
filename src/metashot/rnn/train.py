"""Training loop for the Phased LSTM tasks: epochs of freshly generated sequences, Adam, a test
evaluation after every epoch (the paper's accuracy-vs-epoch curve), exact resume.

Run folder: ``config.json``, ``metrics.jsonl`` (one record per epoch: ``epoch``, ``test_accuracy``,
``train_loss``, ...), ``latest`` -> ``checkpoint-NNNNNNNN/`` (model, optimizer, RNG states).
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
from metashot.errors import UsageError
from metashot.rnn.config import TrainConfig
from metashot.rnn.evaluate import _loss_and_hits, build_model, evaluate_model, test_set
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
from metashot.training.checkpoint import load_optimizer_tensors, optimizer_tensors

log = logging.getLogger(__name__)


def _save(out: Path, config: TrainConfig, model: nn.Module, optimizer: torch.optim.Optimizer,
          generator: torch.Generator, state: dict[str, Any], keep: int) -> None:
    save_checkpoint(
        out,
        config=to_dict(config),
        tensors={
            "model": model.state_dict(),
            "optimizer": optimizer_tensors(optimizer.state_dict()),
            "rng": capture_rng_state({"data": generator}),
        },
        state=state,
        keep=keep,
    )


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
) -> dict[str, Any]:
    """Train ``config`` into run folder ``out``; return a summary (last epoch's test metrics).

    Args:
        resume: continue from the checkpoint in ``out`` (its stored config wins). Without a
            checkpoint there, training starts from scratch.
        max_steps: stop (and checkpoint) once this many optimizer steps are done in total.
        max_minutes: stop (and checkpoint) once this much wall time has passed in this call.
    """
    out = Path(out)
    dev = resolve_device(device)
    budget = TimeBudget(max_minutes)
    metrics = MetricsLogger(out / "metrics.jsonl")
    checkpoint = None
    if has_checkpoint(out):
        if not resume:
            raise UsageError(f"{out} already holds a checkpoint; pass --resume to continue it or choose another --out")
        checkpoint = load_checkpoint(out, map_location="cpu")
        stored = from_dict(TrainConfig, checkpoint.config)
        if stored != config:
            log.info("resuming with the stored config of %s (flags that differ are ignored)", out)
        config = stored
    elif resume:
        log.info("%s has no checkpoint yet: starting from scratch", out)

    seed_everything(config.seed)
    model = build_model(config).to(dev)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(config.seed + 1)  # the training-data stream
    state: dict[str, Any] = {"step": 0, "epoch": 0, "elapsed_seconds": 0.0}
    if checkpoint is not None:
        model.load_state_dict(checkpoint.group("model"))
        optimizer.load_state_dict(load_optimizer_tensors(checkpoint.group("optimizer")))
        restore_rng_state(checkpoint.group("rng"), {"data": generator})
        state.update(checkpoint.state)
        metrics.truncate_after(int(state["step"]))
    else:
        out.mkdir(parents=True, exist_ok=True)
        if (out / "metrics.jsonl").exists():
            (out / "metrics.jsonl").unlink()

    task = config.task.build()
    evaluation = test_set(config, config.eval_examples)
    steps_per_epoch = config.steps_per_epoch
    total = config.epochs * steps_per_epoch
    step = int(state["step"])
    started = time.monotonic() - float(state.get("elapsed_seconds", 0.0))
    last: dict[str, Any] = {}
    if step == 0:  # the curve starts at epoch 0 (untrained)
        last = evaluate_model(model, config, evaluation, dev)
        metrics.log(0, epoch=0, **{f"test_{k}": v for k, v in last.items()}, elapsed_seconds=0.0)

    def snapshot() -> None:
        state.update(step=step, epoch=step // steps_per_epoch, elapsed_seconds=time.monotonic() - started)
        _save(out, config, model, optimizer, generator, state, keep)

    model.train()
    bar = progress(total=total, initial=step, desc=f"{config.model.model} {task.name}", disable=not show_progress)
    loss_sum, hits, seen = 0.0, 0, 0
    try:
        while step < total:
            batch = task.batch(config.batch_size, generator).to(dev)
            loss, correct = _loss_and_hits(model, task, batch)
            check_finite(step, {"loss": loss})
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            model.constrain_()  # keep tau > 0 and 0 < r_on <= 1
            step += 1
            loss_sum += loss.item() * len(correct)
            hits += int(correct.sum())
            seen += len(correct)
            bar.update(1)
            if step % steps_per_epoch == 0:
                last = evaluate_model(model, config, evaluation, dev)
                epoch = step // steps_per_epoch
                metrics.log(
                    step, epoch=epoch, train_loss=loss_sum / seen, train_accuracy=hits / seen,
                    **{f"test_{k}": v for k, v in last.items()}, elapsed_seconds=time.monotonic() - started,
                )
                bar.set_postfix(epoch=epoch, test_acc=f"{last['accuracy']:.3f}", loss=f"{loss_sum / seen:.3f}")
                loss_sum, hits, seen = 0.0, 0, 0
                snapshot()
            if (max_steps is not None and step >= max_steps) or budget.expired():
                break
    finally:
        bar.close()
    if not has_checkpoint(out) or int(load_checkpoint(out, groups=[]).state["step"]) != step:
        snapshot()
    return {"step": step, "epoch": step // steps_per_epoch, "finished": step >= total,
            **{f"test_{k}": v for k, v in last.items()}}
