"""Meta-training of the coordinate-wise LSTM optimizer by truncated BPTT (paper, Section 2).

One training *step* is one truncated unroll (20 optimizee steps by default) of every optimizee of
the meta-batch; one *epoch* is one fresh meta-batch of ``config.meta_batch`` optimizees (1 by
default) run for the whole horizon (100 steps = 5 unrolls). The meta-gradient of a step is the mean
over the meta-batch of each optimizee's Σ_t f(θ_t). Every ``eval_every`` epochs the optimizer is
scored on held-out validation problems and the best weights are kept in ``RUN/best/`` (model
selection). Non-finite unrolls are reported, skipped, and the weights rolled back to the last good
copy; ``max_consecutive_failures`` in a row raise NonFiniteLossError.

Distributed (``torchrun --nproc-per-node W metashot optim meta-train ...``): meta-training does not fit
DistributedDataParallel (one "batch" is a whole unrolled optimization), so the meta-gradients are
all-reduced by hand. Every rank draws the same global list of ``meta_batch`` problem seeds from
identically seeded generators and keeps optimizees ``rank, rank + W, ...`` of it; each rank
back-propagates its own optimizees' meta-losses, then the summed gradients are averaged over the
global meta-batch, so W processes compute what one process computes with the same ``meta_batch``
(within float rounding). Validation problems are sharded the same way and the per-problem scores
gathered (every rank makes the same model-selection decision); a non-finite unroll on any rank makes
every rank skip and roll back; the time budget is agreed by an all-reduce. Only rank 0 writes
checkpoints, ``best/``, metrics and the progress bar. Checkpoints hold every rank's RNG state and,
when written mid-horizon, every rank's carried truncated-BPTT state (optimizee parameters and LSTM
states of its optimizees, plus the weights to roll back to), so a resume — on the same number of
processes only — continues bit-identically on CPU.
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
from torch import Tensor

from metashot.config import from_dict, save_json, to_dict
from metashot.errors import CheckpointError, NonFiniteLossError, UsageError
from metashot.optim.config import MetaTrainConfig
from metashot.optim.coordinatewise import STATE_LAYOUT, CoordinatewiseLSTM, state_from_layout
from metashot.optim.evaluate import TRAIN_SEED_LIMIT, learned_factory, run_many, val_problem_seed
from metashot.optim.meta import UnrollState, init_state, step_weight, unroll
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
    seed_everything,
)
from metashot.training import distributed as distrib
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
    world_size: int = 1
    meta_batch: int = 1


def validate(
    net: CoordinatewiseLSTM, task: Task, config: MetaTrainConfig, device: str, ctx: distrib.DistContext | None = None
) -> float:
    """Mean loss over the horizon on the validation problems (the meta-objective, per step: weighted by
    ``config.loss_weighting``'s w_t, normalised by Σ w_t).

    With a distributed ``ctx`` each rank runs problems ``rank, rank + W, ...`` and the per-problem
    scores are gathered, so every rank returns the single-process value (same order of summation).
    """
    rank, world = (ctx.rank, ctx.world_size) if ctx is not None else (0, 1)
    mine = list(distrib.shard_indices(config.num_val, rank, world))
    curves = run_many(task, learned_factory(net), [val_problem_seed(i) for i in mine], config.horizon, device)
    scores = {i: _weighted_mean(c, config) for i, c in zip(mine, curves)}
    if world > 1:
        scores = {i: v for part in distrib.gather_objects(scores, ctx) for i, v in part.items()}
    value = sum(scores[i] for i in range(config.num_val)) / config.num_val
    return value if math.isfinite(value) else math.inf


def _weighted_mean(curve: list[float], config: MetaTrainConfig) -> float:
    """Σ w_t f_t / Σ w_t over the curve's steps (the plain mean for uniform weights)."""
    weights = [step_weight(t, config.horizon, config.loss_weighting) for t in range(len(curve))]
    return sum(w * f for w, f in zip(weights, curve)) / sum(weights)


def carry_group(rank: int) -> str:
    """Checkpoint group of rank ``rank``'s carried truncated-BPTT state (``carry``, ``carry-rank1``, ...)."""
    return "carry" if rank == 0 else f"carry-rank{rank}"


def _pack_carry(states: dict[int, UnrollState]) -> dict[str, Tensor]:
    """``{"J/params|h|c|moments/NAME": tensor}`` for optimizee J (its index in the global meta-batch)."""
    return {
        f"{j}/{kind}/{name}": value.detach().cpu()
        for j, state in states.items()
        for kind, part in (("params", state.params), ("h", state.h), ("c", state.c), ("moments", state.moments))
        for name, value in part.items()
    }


def _unpack_carry(
    group: dict[str, Tensor], problems: dict[int, Problem], t: int, device: str, where: str, *, layout: str | None,
    uses_moments: bool = False,
) -> dict[int, UnrollState]:
    """``layout``: the checkpoint's ``carry_layout`` (None: metashot 0.1, see :func:`state_from_layout`);
    ``uses_moments``: the net keeps gradient moments, so every carried LSTM state must come with them."""
    states = {}
    for j, problem in problems.items():
        order = list(problem.init())  # dict order matters (fused LSTM state rows follow it)

        def pick(kind: str, j: int = j, order: list[str] = order) -> dict[str, Tensor]:
            prefix = f"{j}/{kind}/"
            found = {k[len(prefix):]: v for k, v in group.items() if k.startswith(prefix)}
            names = [n for n in order if n in found] + sorted(n for n in found if n not in order)
            if kind in ("h", "c"):
                return {n: state_from_layout(found[n], layout, f"carry ({where})").contiguous().to(device) for n in names}
            return {n: found[n].to(device) for n in names}

        states[j] = UnrollState(params=pick("params"), h=pick("h"), c=pick("c"), step=t, moments=pick("moments"))
        if list(states[j].params) != order:
            raise CheckpointError(f"{where}: the carried state of optimizee {j} does not match its problem")
        if set(states[j].moments) != (set(states[j].h) if uses_moments else set()):
            raise CheckpointError(
                f"{where}: the carried gradient moments of optimizee {j} do not match its LSTM states (the net "
                f"{'keeps' if uses_moments else 'keeps no'} moments); the checkpoint is damaged or from another run"
            )
    return states


def _average_meta_gradient(
    net: CoordinatewiseLSTM, ctx: distrib.DistContext, meta_batch: int, bad: bool, sums: tuple[float, float]
) -> tuple[bool, tuple[float, float]]:
    """Turn the ``.grad`` sums of this rank's optimizees into the mean over the global meta-batch.

    ``bad``: this rank saw a non-finite unroll. Returns ``(ok, global sums of (meta_loss, last_loss))``;
    ``ok`` is False on every rank when any rank was bad (the step is then skipped everywhere).
    """
    params = list(net.parameters())
    if not ctx.distributed:
        if bad:
            return False, sums
        if meta_batch > 1:
            for p in params:
                if p.grad is not None:
                    p.grad.div_(meta_batch)
        return True, sums
    world = ctx.world_size
    stats = torch.tensor([*sums, 1.0 if bad else 0.0], dtype=torch.float64, device=ctx.device)
    distrib.all_reduce_mean_([stats])  # collective 1: losses and the "bad" flag
    stats = stats.mul(world).tolist()
    if stats[2] > 0:
        return False, (stats[0], stats[1])
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params])
    distrib.all_reduce_mean_([flat])  # collective 2: Σ_ranks grads / W
    if meta_batch != world:
        flat.mul_(world / meta_batch)
    offset = 0
    for p in params:
        p.grad = flat[offset : offset + p.numel()].view_as(p).clone()
        offset += p.numel()
    return True, (stats[0], stats[1])


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

    Under ``torchrun`` the ``config.meta_batch`` optimizees of each step are sharded over the
    processes (see the module docstring); ``config.meta_batch`` must be at least the number of processes.

    Args:
        max_steps: stop after this many unrolls in total (counting those before a resume).
        meta_batch_size: quadratics bundled (summed) into each optimizee (quadratic only; default 128
            for it, as in DeepMind's released code, else 1). Not to be confused with
            ``config.meta_batch`` (independent optimizees per step, averaged).
        init_from: start from the weights of this meta-trained optimizer (fine-tuning, e.g. on
            another task); its architecture replaces ``config.net``.
    """
    with distrib.process_group(torch.device(device)) as ctx:
        return _meta_train(
            config, Path(run_dir), ctx=ctx, seed=seed, resume=resume, max_steps=max_steps, max_minutes=max_minutes,
            data_dir=data_dir, show_progress=show_progress, bundle=meta_batch_size, init_from=init_from,
        )


def _meta_train(
    config: MetaTrainConfig,
    run_dir: Path,
    *,
    ctx: distrib.DistContext,
    seed: int,
    resume: bool,
    max_steps: int | None,
    max_minutes: float | None,
    data_dir: str | None,
    show_progress: bool,
    bundle: int | None,
    init_from: str | Path | None,
) -> MetaTrainResult:
    dev = str(ctx.device)
    if has_checkpoint(run_dir) and not resume:
        raise UsageError(f"{run_dir} already holds a checkpoint; pass --resume to continue or choose another --out")
    ckpt = load_checkpoint(run_dir, map_location=dev) if resume and has_checkpoint(run_dir) else None
    if ckpt is not None:
        saved = from_dict(MetaTrainConfig, ckpt.config)
        # Schedule/runtime fields may change on resume; everything that defines the model stays.
        # (the block sizes only change float rounding, speed and memory, so they are runtime fields too.)
        runtime = {k: getattr(config, k) for k in _RUNTIME_FIELDS}
        saved = replace(saved, net=replace(saved.net, chunk_size=config.net.chunk_size,
                                           accelerator_chunk_size=config.net.accelerator_chunk_size))
        if replace(saved, **runtime) != config and ctx.is_main:
            logger.warning("resuming with the checkpoint's config (the given one differs beyond %s)", _RUNTIME_FIELDS)
        config = replace(saved, **runtime)
        distrib.check_world_size(int(ckpt.state.get("world_size", 1)), ctx, str(run_dir))
        if bundle is None and "bundle" in ckpt.state:
            bundle = int(ckpt.state["bundle"])
    if bundle is None:
        bundle = 128 if config.task == "quadratic" else 1
    if bundle > 1 and config.task != "quadratic":
        raise UsageError("meta_batch_size > 1 is only supported for the quadratic task")
    meta_batch, world = config.meta_batch, ctx.world_size
    if meta_batch < world:
        raise UsageError(
            f"--meta-batch {meta_batch} is smaller than the {world} processes (each needs an optimizee of its own); "
            f"pass --meta-batch {world} or a multiple of it"
        )
    mine = list(distrib.shard_indices(meta_batch, ctx.rank, world))  # this rank's optimizees
    options: dict[str, Any] = {"num_problems": bundle} if bundle > 1 else {}
    train_task = make_task(config.task, data_dir=data_dir, **options)
    val_task = make_task(config.task, data_dir=data_dir)

    seed_everything(seed)  # torch (the LSTM's initial weights), NumPy, Python: the saved RNG states are reproducible
    if init_from is not None and ckpt is None:
        net = CoordinatewiseLSTM.from_pretrained(init_from).to(dev)
        config = replace(config, net=net.config)
        if ctx.is_main:
            logger.info("initialised from %s", init_from)
    else:
        net = CoordinatewiseLSTM(config.net).to(dev)
    meta_opt = torch.optim.Adam(net.parameters(), lr=config.meta_lr)
    generator = torch.Generator().manual_seed(seed)
    step, epoch, skipped, best_val, best_epoch, failures = 0, 0, 0, math.inf, -1, 0
    metrics = MetricsLogger(run_dir / "metrics.jsonl", enabled=ctx.is_main)
    # The meta-batch in flight: global seeds, this rank's problems and carried states, step t in the horizon.
    seeds: list[int] | None = None
    problems: dict[int, Problem] = {}
    states: dict[int, UnrollState] = {}
    t = 0
    good_copy: tuple[dict[str, Tensor], dict[str, Any]] | None = None

    if ckpt is not None:
        net.load_state_dict(ckpt.group("model"))
        meta_opt.load_state_dict(load_optimizer_tensors(ckpt.group("optimizer")))
        restore_rng_state(ckpt.group(distrib.rng_group(ctx.rank)), {"problems": generator})
        step, epoch, skipped = ckpt.step, int(ckpt.state["epoch"]), int(ckpt.state.get("skipped", 0))
        best_val, best_epoch = float(ckpt.state.get("best_val_loss", math.inf)), int(ckpt.state.get("best_epoch", -1))
        failures = int(ckpt.state.get("failures", 0))
        if ckpt.state.get("problem_seeds") is not None:  # written mid-horizon: continue those optimizees
            seeds, t = [int(s) for s in ckpt.state["problem_seeds"]], int(ckpt.state["t"])
            problems = {j: train_task.sample(seeds[j], device=dev) for j in mine}
            states = _unpack_carry(ckpt.group(carry_group(ctx.rank)), problems, t, dev, str(ckpt.path),
                                   layout=ckpt.state.get("carry_layout"), uses_moments=net.uses_moments)
            good_copy = (ckpt.group("rollback-model"), load_optimizer_tensors(ckpt.group("rollback-optimizer")))
        metrics.truncate_after(step)
        if ctx.is_main:
            logger.info("resumed from %s at step %d (epoch %d, t=%d)", ckpt.path, step, epoch, t)
        distrib.barrier(ctx)  # nobody writes (or prunes checkpoints) before every rank has read
    last_validated = int(ckpt.state.get("last_validated", epoch)) if ckpt is not None else epoch
    if ctx.is_main:
        save_json(run_dir / "config.json", to_dict(config))
        if meta_batch > 1 or world > 1:
            share = f"{meta_batch // world}" + ("" if meta_batch % world == 0 else f"-{meta_batch // world + 1}")
            logger.info(
                "meta-batch: %d optimizees per meta-step = %d process(es) x %s each%s; meta-gradient averaged over all %d",
                meta_batch, world, share, f" (each bundles {bundle} quadratics)" if bundle > 1 else "", meta_batch,
            )

    def checkpoint() -> None:
        """Collective: every rank calls it; rank 0 writes."""
        mid = seeds is not None and 0 < t < config.horizon
        rng = distrib.gather_rng_states(ctx, capture_rng_state({"problems": generator}))
        carried = distrib.gather_objects(_pack_carry(states) if mid else {}, ctx)
        if ctx.is_main:
            tensors = {"model": net.state_dict(), "optimizer": optimizer_tensors(meta_opt.state_dict()), **rng}
            state = {
                "step": step, "epoch": epoch, "skipped": skipped, "best_val_loss": best_val, "best_epoch": best_epoch,
                "failures": failures, "last_validated": last_validated, "world_size": world,
                "meta_batch": meta_batch, "bundle": bundle,
            }
            if mid:
                assert good_copy is not None
                tensors.update({carry_group(r): part for r, part in enumerate(carried)})
                tensors["rollback-model"] = good_copy[0]
                tensors["rollback-optimizer"] = optimizer_tensors(good_copy[1])
                state.update(t=t, problem_seeds=seeds, carry_layout=STATE_LAYOUT)
            save_checkpoint(run_dir, config=to_dict(config), tensors=tensors, state=state)
        distrib.barrier(ctx)

    total_steps = config.num_epochs * config.unrolls_per_epoch
    budget = TimeBudget(max_minutes)
    if good_copy is None:
        good_copy = (copy.deepcopy(net.state_dict()), copy.deepcopy(meta_opt.state_dict()))
    stopped_by = "done"
    per_problem = 1.0 / bundle
    extra = {"meta_batch": meta_batch, "world_size": world} if meta_batch > 1 or world > 1 else {}
    bar = progress(
        total=total_steps, desc=f"meta-train {config.task}", disable=not (show_progress and ctx.is_main), initial=step
    )
    while step < total_steps:
        if max_steps is not None and step >= max_steps:
            stopped_by = "max_steps"
            break
        if distrib.any_rank(budget.expired(), ctx) if max_minutes is not None else False:
            stopped_by = "max_minutes"
            break
        if seeds is None or t >= config.horizon:  # a fresh meta-batch: the same global seeds on every rank
            seeds = [int(s) for s in torch.randint(TRAIN_SEED_LIMIT, (meta_batch,), generator=generator)]
            problems = {j: train_task.sample(seeds[j], device=dev) for j in mine}
            states = {j: init_state(net, problems[j].init(), fused=config.fuse_parameters) for j in mine}
            t = 0
        meta_opt.zero_grad(set_to_none=True)
        bad, value, sums = False, math.nan, (0.0, 0.0)
        new_states: dict[int, UnrollState] = {}
        for j in mine:  # one backward per optimizee: the graph of one unroll at a time
            meta_loss, losses, new_states[j] = unroll(
                net, problems[j], states[j].detached(), config.unroll, second_order=config.second_order,
                weighting=config.loss_weighting, horizon=config.horizon,
            )
            value = float(meta_loss.detach())
            if not math.isfinite(value):
                bad = True
                break
            meta_loss.backward()
            sums = (sums[0] + value, sums[1] + losses[-1])
        ok, sums = _average_meta_gradient(net, ctx, meta_batch, bad, sums)
        if ok:
            if config.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(net.parameters(), config.grad_clip)
            ok = bool(torch.stack([p.grad.sum() for p in net.parameters() if p.grad is not None]).isfinite().all())
        if ok:
            meta_opt.step()
            ok = bool(torch.stack([p.sum() for p in net.parameters()]).isfinite().all())
        ok = not distrib.any_rank(not ok, ctx)  # every rank skips (or keeps) the step together
        step += 1
        bar.update(1)
        if not ok:
            # Report, roll back to the last good weights and abandon this meta-batch.
            skipped += 1
            failures += 1
            if ctx.is_main:
                logger.warning(
                    "step %d: non-finite unroll (epoch %d, t=%d): skipped and rolled back", step, epoch, t
                )
            net.load_state_dict(good_copy[0])
            meta_opt.load_state_dict(good_copy[1])
            metrics.log(step, skipped_unroll=1, epoch=epoch)
            seeds, t = None, 0
            epoch += 1
            if failures >= config.max_consecutive_failures:
                checkpoint()
                raise NonFiniteLossError(
                    step, {"meta_loss": value},
                    f"{failures} unrolls in a row diverged; lower --meta-lr, set --grad-clip, or a smaller --output-scale",
                )
            continue
        failures = 0
        states = new_states
        t += config.unroll
        meta_mean, last_mean = sums[0] / meta_batch, sums[1] / meta_batch
        metrics.log(step, epoch=epoch, meta_loss=meta_mean * per_problem, loss_last=last_mean * per_problem, t=t,
                    **extra)
        bar.set_postfix(loss=f"{last_mean * per_problem:.4g}", best=f"{best_val:.4g}")
        if t >= config.horizon:
            epoch += 1
            good_copy = (copy.deepcopy(net.state_dict()), copy.deepcopy(meta_opt.state_dict()))
            if epoch % config.eval_every == 0 or epoch == config.num_epochs:
                val = validate(net, val_task, config, dev, ctx)
                last_validated = epoch
                metrics.log(step, epoch=epoch, val_loss=val)
                if ctx.is_main:
                    logger.info("epoch %d: validation loss %.5g (best %.5g)", epoch, val, best_val)
                if val < best_val:
                    best_val, best_epoch = val, epoch
                    if ctx.is_main:
                        _save_best(run_dir, net, config, {"step": step, "epoch": epoch, "val_loss": val, "seed": seed})
            if epoch % config.checkpoint_every == 0:
                checkpoint()
    bar.close()
    if epoch != last_validated or best_epoch < 0:  # validate the final weights too (model selection)
        val = validate(net, val_task, config, dev, ctx)
        metrics.log(step, epoch=epoch, val_loss=val)
        if val < best_val or best_epoch < 0:
            best_val, best_epoch = val, epoch
            if ctx.is_main:
                _save_best(run_dir, net, config, {"step": step, "epoch": epoch, "val_loss": val, "seed": seed})
    checkpoint()
    return MetaTrainResult(
        step, epoch, best_val, best_epoch, skipped, stopped_by, str(run_dir), world_size=world, meta_batch=meta_batch
    )
