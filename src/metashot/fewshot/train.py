"""Episodic training (Vinyals et al. 2016, Section 2.2) and the baseline classifier's training.

The training images live on the device as one uint8 tensor; each step draws the indices of a batch
of episodes in one vectorised call (:meth:`EpisodeSampler.sample`), gathers the images by indexing,
and runs support and query of all episodes through the conv net in **one** forward pass. No Python
loop over images, no PIL in the hot path, and no host synchronisation except every ``log_every``
steps.
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
) -> TrainResult:
    """Train ``config`` into the run folder ``out``; checkpoint every ``checkpoint_every`` steps and at
    the end (also when ``max_minutes`` runs out). ``max_steps`` caps the total step count."""
    out = Path(out)
    budget = TimeBudget(max_minutes)
    dev = resolve_device(device)
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
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(config.seed)
    ep = config.episodes
    sampler = EpisodeSampler(
        dataset.labels, ep.n_way, ep.n_shot, ep.n_query, config.steps, generator=generator, class_names=dataset.class_names
    )
    step = 0
    logger = MetricsLogger(out / "metrics.jsonl")
    if resume and has_checkpoint(out):
        ckpt = load_checkpoint(out, map_location="cpu")
        saved = from_dict(TrainConfig, ckpt.config)
        old, new = _comparable(to_dict(saved)), _comparable(to_dict(config))
        if old != new:
            diff = ", ".join(f"{k}: saved {old[k]!r}, now {new.get(k)!r}" for k in old if old[k] != new.get(k))
            raise CheckpointError(f"{out}: cannot resume with a different config ({diff}); use the run's original options")
        model.load_state_dict(ckpt.group("model"))
        optimizer.load_state_dict(load_optimizer_tensors(ckpt.group("optimizer")))
        restore_rng_state(ckpt.group("rng"), {"episodes": generator})
        step = ckpt.step
        logger.truncate_after(step)
        log.info("resumed %s at step %d", out, step)
    last_step = config.steps if max_steps is None else min(config.steps, max_steps)
    images = dataset.images.to(dev)  # (N, 1, 28, 28) uint8, indexed on the device
    labels = dataset.labels.to(dev)

    def checkpoint() -> None:
        save_checkpoint(
            out,
            config=to_dict(config),
            tensors={
                "model": model.state_dict(),
                "optimizer": optimizer_tensors(optimizer.state_dict()),
                "rng": capture_rng_state({"episodes": generator}),
            },
            state={"step": step, "train_classes": dataset.num_classes, "train_images": len(dataset)},
        )

    model.train()
    loss_sum = torch.zeros((), device=dev)
    acc_sum = torch.zeros((), device=dev)
    window = 0
    last_loss = last_acc = float("nan")
    start, start_step = time.perf_counter(), step
    bar = progress(total=last_step, initial=step, desc=f"train {config.model.method}", disable=not show_progress)
    stopped_early = False
    while step < last_step:
        if budget.expired():
            stopped_early = True
            log.info("time budget of %s minutes spent at step %d; checkpointing", max_minutes, step)
            break
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(config, step)
        if config.model.method == "baseline":
            idx = torch.randint(len(dataset), (config.batch_size,), generator=generator).to(dev)
            logits = model.classify(images[idx].to(torch.float32).div_(255.0))  # type: ignore[operator]
            loss = F.cross_entropy(logits, labels[idx])
            correct = (logits.argmax(-1) == labels[idx]).float().mean()
        else:
            idx = sampler.sample(config.episodes_per_step).to(dev, non_blocking=True)
            episode = episode_from_indices(images, idx, ep.n_shot)
            log_probs = model(episode.support_images, episode.support_labels, episode.query_images, ep.n_way)
            loss = F.nll_loss(log_probs.flatten(0, -2), episode.query_labels.flatten())
            correct = (log_probs.argmax(-1) == episode.query_labels).float().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        loss_sum += loss.detach()
        acc_sum += correct.detach()
        window += 1
        bar.update(1)
        if step % config.log_every == 0 or step == last_step:
            last_loss, last_acc = float(loss_sum) / window, float(acc_sum) / window
            check_finite(step, {"loss": last_loss})
            elapsed = time.perf_counter() - start
            logger.log(step, loss=last_loss, accuracy=last_acc, lr=learning_rate(config, step - 1), seconds=round(elapsed, 2))
            bar.set_postfix(loss=f"{last_loss:.3f}", acc=f"{last_acc:.3f}")
            loss_sum.zero_()
            acc_sum.zero_()
            window = 0
        if step % config.checkpoint_every == 0 and step < last_step:
            checkpoint()
    bar.close()
    if window:
        last_loss, last_acc = float(loss_sum) / window, float(acc_sum) / window
        check_finite(step, {"loss": last_loss})
    checkpoint()
    seconds = time.perf_counter() - start
    per_step = config.episodes_per_step if config.model.method != "baseline" else 1
    rate = (step - start_step) * per_step / seconds if seconds > 0 else float("nan")
    return TrainResult(out, step, last_loss, last_acc, seconds, rate, stopped_early)
