"""Meta-training of the coordinate-wise LSTM optimizer by truncated BPTT (paper, Section 2).

One training *step* is one truncated unroll (20 optimizee steps by default); one *epoch* is one
fresh optimizee run for the whole horizon (100 steps = 5 unrolls). Every ``eval_every`` epochs
the optimizer is scored on held-out validation problems and the best weights are kept in
``RUN/best/`` (model selection). Non-finite unrolls are reported, skipped, and the weights rolled
back to the last good copy; ``max_consecutive_failures`` in a row raise NonFiniteLossError.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from metashot.config import from_dict, save_json, to_dict
from metashot.errors import NonFiniteLossError, UsageError
from metashot.optim.config import MetaTrainConfig
from metashot.optim.coordinatewise import CoordinatewiseLSTM
from metashot.optim.evaluate import TRAIN_SEED_LIMIT, learned_factory, run_many, val_problem_seed
from metashot.optim.meta import UnrollState, init_state, unroll
from metashot.optim.tasks import Problem, Task, make_task
from metashot.training import (
    MetricsLogger,
    TimeBudget,
    capture_rng_state,
    has_checkpoint,
    load_checkpoint,
    progress,
    restore_rng_state,
    save_checkpoint,
)
from metashot.training.checkpoint import load_optimizer_tensors, optimizer_tensors

logger = logging.getLogger(__name__)


_RUNTIME_FIELDS = ("num_epochs", "eval_every", "checkpoint_every", "fuse_parameters", "max_consecutive_failures")


@dataclass
class MetaTrainResult:
    """What :func:`meta_train` did."""

    step: int
    epoch: int
    best_val_loss: float
    best_epoch: int
    skipped_unrolls: int
    stopped_by: str  # "done" | "max_steps" | "max_minutes"
    run_dir: str


def validate(net: CoordinatewiseLSTM, task: Task, config: MetaTrainConfig, device: str) -> float:
    """Mean loss over the horizon on the validation problems (the meta-objective, per step)."""
    seeds = [val_problem_seed(i) for i in range(config.num_val)]
    curves = run_many(task, learned_factory(net), seeds, config.horizon, device)
    value = sum(sum(c) / len(c) for c in curves) / len(curves)
    return value if math.isfinite(value) else math.inf


def _save_best(run_dir: Path, net: CoordinatewiseLSTM, config: MetaTrainConfig, state: dict[str, Any]) -> None:
    """Write ``run_dir/best/`` (config.json, state.json, model.safetensors), replacing it whole."""
    best, tmp = run_dir / "best", run_dir / ".best.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_json(tmp / "config.json", to_dict(config))
    save_json(tmp / "state.json", state)
    save_file({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}, str(tmp / "model.safetensors"))
    shutil.rmtree(best, ignore_errors=True)
    os.replace(tmp, best)


def meta_train(
    config: MetaTrainConfig,
    run_dir: str | Path,
    *,
    device: str = "cpu",
    seed: int = 0,
    resume: bool = False,
    max_steps: int | None = None,
    max_minutes: float | None = None,
    data_dir: str | None = None,
    show_progress: bool = True,
    meta_batch_size: int | None = None,
    init_from: str | Path | None = None,
) -> MetaTrainResult:
    """Meta-train an optimizer for ``config.task``; checkpoints, metrics and ``best/`` go to ``run_dir``.

    Args:
        max_steps: stop after this many unrolls in total (counting those before a resume).
        meta_batch_size: independent problems per epoch, summed (quadratic only; default 128 for it,
            as in DeepMind's released code, else 1).
        init_from: start from the weights of this meta-trained optimizer (fine-tuning, e.g. on
            another task); its architecture replaces ``config.net``.
    """
    run_dir = Path(run_dir)
    if has_checkpoint(run_dir) and not resume:
        raise UsageError(f"{run_dir} already holds a checkpoint; pass --resume to continue or choose another --out")
    if meta_batch_size is None:
        meta_batch_size = 128 if config.task == "quadratic" else 1
    options: dict[str, Any] = {"num_problems": meta_batch_size} if meta_batch_size > 1 else {}
    if meta_batch_size > 1 and config.task != "quadratic":
        raise UsageError("meta_batch_size > 1 is only supported for the quadratic task")
    train_task = make_task(config.task, data_dir=data_dir, **options)
    val_task = make_task(config.task, data_dir=data_dir)

    torch.manual_seed(seed)
    if init_from is not None and not resume:
        net = CoordinatewiseLSTM.from_pretrained(init_from).to(device)
        config = replace(config, net=net.config)
        logger.info("initialised from %s", init_from)
    else:
        net = CoordinatewiseLSTM(config.net).to(device)
    meta_opt = torch.optim.Adam(net.parameters(), lr=config.meta_lr)
    generator = torch.Generator().manual_seed(seed)
    step, epoch, skipped, best_val, best_epoch = 0, 0, 0, math.inf, -1
    metrics = MetricsLogger(run_dir / "metrics.jsonl")

    if resume and has_checkpoint(run_dir):
        ckpt = load_checkpoint(run_dir, map_location=device)
        saved = from_dict(MetaTrainConfig, ckpt.config)
        # Schedule/runtime fields may change on resume; everything that defines the model stays.
        # (chunk_size only changes float rounding and speed, so it is a runtime field too.)
        runtime = {k: getattr(config, k) for k in _RUNTIME_FIELDS}
        saved = replace(saved, net=replace(saved.net, chunk_size=config.net.chunk_size))
        if replace(saved, **runtime) != config:
            logger.warning("resuming with the checkpoint's config (the given one differs beyond %s)", _RUNTIME_FIELDS)
        config = replace(saved, **runtime)
        net = CoordinatewiseLSTM(config.net).to(device)
        net.load_state_dict(ckpt.group("model"))
        meta_opt = torch.optim.Adam(net.parameters(), lr=config.meta_lr)
        meta_opt.load_state_dict(load_optimizer_tensors(ckpt.group("optimizer")))
        restore_rng_state(ckpt.group("rng"), {"problems": generator})
        step, epoch, skipped = ckpt.step, int(ckpt.state["epoch"]), int(ckpt.state.get("skipped", 0))
        best_val, best_epoch = float(ckpt.state.get("best_val_loss", math.inf)), int(ckpt.state.get("best_epoch", -1))
        metrics.truncate_after(step)
        logger.info("resumed from %s at step %d (epoch %d)", ckpt.path, step, epoch)
    save_json(run_dir / "config.json", to_dict(config))

    def checkpoint() -> None:
        save_checkpoint(
            run_dir,
            config=to_dict(config),
            tensors={
                "model": net.state_dict(),
                "optimizer": optimizer_tensors(meta_opt.state_dict()),
                "rng": capture_rng_state({"problems": generator}),
            },
            state={"step": step, "epoch": epoch, "skipped": skipped, "best_val_loss": best_val, "best_epoch": best_epoch},
        )

    total_steps = config.num_epochs * config.unrolls_per_epoch
    budget = TimeBudget(max_minutes)
    good_copy = (copy.deepcopy(net.state_dict()), copy.deepcopy(meta_opt.state_dict()))
    problem: Problem | None = None
    state: UnrollState | None = None
    failures, stopped_by, last_validated = 0, "done", epoch
    bar = progress(total=total_steps, desc=f"meta-train {config.task}", disable=not show_progress, initial=step)
    while step < total_steps:
        if max_steps is not None and step >= max_steps:
            stopped_by = "max_steps"
            break
        if budget.expired():
            stopped_by = "max_minutes"
            break
        if state is None or state.step >= config.horizon:
            problem_seed = int(torch.randint(TRAIN_SEED_LIMIT, (1,), generator=generator))
            problem = train_task.sample(problem_seed, device=device)
            state = init_state(net, problem.init(), fused=config.fuse_parameters)
        assert problem is not None
        meta_opt.zero_grad(set_to_none=True)
        meta_loss, losses, new_state = unroll(
            net, problem, state.detached(), config.unroll, second_order=config.second_order
        )
        ok = math.isfinite(float(meta_loss.detach()))
        if ok:
            meta_loss.backward()
            if config.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(net.parameters(), config.grad_clip)
            ok = bool(torch.stack([p.grad.sum() for p in net.parameters() if p.grad is not None]).isfinite().all())
        if ok:
            meta_opt.step()
            ok = bool(torch.stack([p.sum() for p in net.parameters()]).isfinite().all())
        step += 1
        bar.update(1)
        if not ok:
            # Report, roll back to the last good weights and abandon this optimizee.
            skipped += 1
            failures += 1
            logger.warning("step %d: non-finite unroll (epoch %d, t=%d): skipped and rolled back", step, epoch, state.step)
            net.load_state_dict(good_copy[0])
            meta_opt.load_state_dict(good_copy[1])
            metrics.log(step, skipped_unroll=1, epoch=epoch)
            if failures >= config.max_consecutive_failures:
                checkpoint()
                raise NonFiniteLossError(
                    step, {"meta_loss": float(meta_loss.detach())},
                    f"{failures} unrolls in a row diverged; lower --meta-lr, set --grad-clip, or a smaller --output-scale",
                )
            state = None
            epoch += 1
            continue
        failures = 0
        state = new_state
        per_problem = 1.0 / meta_batch_size
        metrics.log(step, epoch=epoch, meta_loss=float(meta_loss.detach()) * per_problem,
                    loss_last=losses[-1] * per_problem, t=state.step)
        bar.set_postfix(loss=f"{losses[-1] * per_problem:.4g}", best=f"{best_val:.4g}")
        if state.step >= config.horizon:
            epoch += 1
            good_copy = (copy.deepcopy(net.state_dict()), copy.deepcopy(meta_opt.state_dict()))
            if epoch % config.eval_every == 0 or epoch == config.num_epochs:
                val = validate(net, val_task, config, device)
                last_validated = epoch
                metrics.log(step, epoch=epoch, val_loss=val)
                logger.info("epoch %d: validation loss %.5g (best %.5g)", epoch, val, best_val)
                if val < best_val:
                    best_val, best_epoch = val, epoch
                    _save_best(run_dir, net, config, {"step": step, "epoch": epoch, "val_loss": val, "seed": seed})
            if epoch % config.checkpoint_every == 0:
                checkpoint()
    bar.close()
    if epoch != last_validated or best_epoch < 0:  # validate the final weights too (model selection)
        val = validate(net, val_task, config, device)
        metrics.log(step, epoch=epoch, val_loss=val)
        if val < best_val or best_epoch < 0:
            best_val, best_epoch = val, epoch
            _save_best(run_dir, net, config, {"step": step, "epoch": epoch, "val_loss": val, "seed": seed})
    checkpoint()
    return MetaTrainResult(step, epoch, best_val, best_epoch, skipped, stopped_by, str(run_dir))
