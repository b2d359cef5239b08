"""Training the SMILES VAE: ELBO with sigmoid KL annealing plus the property loss.

Loss per molecule (paper, "Methods"; reference code ``chemical_vae``)::

    (sum_t CE(y_t) + w(epoch) * KL(q(z|x) || N(0, I))) / max_length  +  property_weight * MSE(props)

with ``w`` the sigmoid schedule of :func:`~metashot.chem.functional.kl_weight`. Dividing the ELBO by
the sequence length keeps it on the scale of the reference code's per-character cross-entropy, so
the property weight means what it means there.

Speed: the whole encoded dataset lives on the device as one ``uint8`` tensor; batches are index
gathers (no DataLoader); CUDA uses bf16 autocast (falling back to fp32 if cuDNN refuses bf16 GRUs),
TF32 matmuls and cuDNN's fused multi-layer GRU. Losses are synchronised only every ``log_every``
steps. ``--max-minutes`` stops cleanly with a final checkpoint; ``--resume`` continues exactly
(model, optimizer, RNG and position in the epoch).

Distributed (``torchrun --nproc-per-node N -m metashot.cli chem train ...``): ``batch_size`` stays the
**global** batch (it must be divisible by N). Every rank follows the same epoch order (seeded; length
buckets included) and keeps rows ``rank, rank + N, ...`` of each batch, with the decode length of the
whole batch and the matching rows of one latent-noise draw for the whole batch; the model is wrapped
in DistributedDataParallel. The encoder's batch norm normalises each rank's rows on their own, so N
processes compute what one process computes with ``accumulate=N`` (N micro-batches per step). The
held-out evaluations are split between the ranks. Only rank 0 writes checkpoints, metrics and the
progress bar; the checkpoint keeps every rank's RNG state and a run resumes only on the world size
that wrote it. See docs/distributed.md.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from contextlib import nullcontext
from copy import deepcopy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from metashot.chem.config import TrainConfig, VAEConfig
from metashot.chem.data import MoleculeData, batch_order, load_molecule_data
from metashot.chem.functional import (
    cosine_lr_factor,
    gaussian_kl,
    kl_weight,
    property_loss,
    reconstruction_loss,
)
from metashot.chem.smiles import SmilesVocab
from metashot.chem.vae import SmilesVAE
from metashot.config import from_dict, to_dict
from metashot.errors import CheckpointError, UsageError
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

logger = logging.getLogger(__name__)

__all__ = ["TrainResult", "export_weights", "for_evaluation", "load_model", "train"]

LOG_EVERY = 50
RECALIBRATION_BATCHES = 64  # random training batches that recompute the encoder's batch-norm statistics
RECALIBRATION_BATCH_SIZE = 256
RECALIBRATION_SEED = 20161205


class _Encoder(torch.nn.Module):
    """``ids -> mu`` of a VAE, so :func:`torch.optim.swa_utils.update_bn` can drive its encoder."""

    def __init__(self, vae: SmilesVAE) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, ids: Tensor) -> Tensor:
        return self.vae.encode(ids)[0]


@torch.no_grad()
def for_evaluation(model: SmilesVAE, train_ids: Tensor) -> SmilesVAE:
    """``model`` itself, or, when its encoder uses batch norm, a copy whose running statistics are
    recomputed with the current weights ("precise BN") over ``RECALIBRATION_BATCHES`` random batches of
    ``RECALIBRATION_BATCH_SIZE`` rows of ``train_ids`` ``(n, max_length)`` (fixed seed; *not* length-bucketed).

    Why: with ``bucket_by_length`` every training batch holds molecules of one length, so batch norm
    trains on per-bucket statistics while the momentum running averages mix buckets and lag behind the
    weights; evaluating with those averages shifted the latent mean (held-out token accuracy of one
    reduced model: 93.4% with the running averages, 96.8% after recalibration). The caller's model
    (training) keeps its statistics; training itself never reads them.
    """
    if not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        return model
    from torch.optim.swa_utils import update_bn

    copy = deepcopy(model)  # not a fresh SmilesVAE: building one would draw from the global RNG
    device = next(copy.parameters()).device
    generator = torch.Generator().manual_seed(RECALIBRATION_SEED)
    rows = min(RECALIBRATION_BATCH_SIZE, len(train_ids))
    batches = [train_ids[torch.randint(len(train_ids), (rows,), generator=generator).to(train_ids.device)]
               .to(device).long() for _ in range(RECALIBRATION_BATCHES)]
    update_bn(batches, _Encoder(copy))  # resets the statistics, then averages them over the batches
    copy.eval()
    return copy


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    epoch: float
    stopped_because: str
    last_metrics: dict[str, Any]


# ---------------------------------------------------------------------------------------------
# checkpoint <-> model


def _run_config(config: TrainConfig, vocab: SmilesVocab, seed: int) -> dict[str, Any]:
    return {"system": "chem", "train": to_dict(config), "vocab": vocab.to_dict(), "seed": seed}


def load_model(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> tuple[SmilesVAE, SmilesVocab, TrainConfig]:
    """Rebuild the model, vocabulary and training config from a run folder or exported folder."""
    ckpt = load_checkpoint(path, groups=["model"])
    cfg = ckpt.config
    if cfg.get("system") != "chem" or "vocab" not in cfg:
        raise CheckpointError(f"{path}: not a chem checkpoint (config.json lacks system=chem / vocab)")
    train_cfg = from_dict(TrainConfig, cfg["train"])
    vocab = SmilesVocab.from_dict(cfg["vocab"])
    model = SmilesVAE(len(vocab), train_cfg.model)
    try:
        model.load_state_dict(ckpt.group("model"))
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not match the config ({str(exc).splitlines()[0]})") from None
    model.to(resolve_device(device)).float().eval()
    return model, vocab, train_cfg


def export_weights(run_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str], dtype: torch.dtype = torch.float16) -> Path:
    """Write a compact, inference-only copy (config.json, state.json, model.safetensors in ``dtype``)."""
    ckpt = load_checkpoint(run_dir, groups=["model"])
    weights = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in ckpt.group("model").items()}
    state = dict(ckpt.state)
    state["exported_dtype"] = str(dtype).replace("torch.", "")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    from safetensors.torch import save_file

    from metashot.config import save_json

    save_json(out / "config.json", ckpt.config)
    save_json(out / "state.json", state)
    save_file({k: v.contiguous() for k, v in weights.items()}, str(out / "model.safetensors"))
    return out


# ---------------------------------------------------------------------------------------------
# evaluation during training (no RDKit: string equality with the file's SMILES)


@torch.no_grad()
def _eval_counts(
    model: SmilesVAE, ids: Tensor, properties: Tensor | None, device: torch.device, batch: int
) -> tuple[tuple[int, ...], Tensor]:
    """Counts over ``ids`` ``(n, max_length)``: ``(correct positions, positions, correct molecule tokens,
    molecule tokens, exact reconstructions)`` and the summed property |error| ``(3,)``.

    "Positions" are all ``max_length`` teacher-forced positions (mostly easy padding); "molecule tokens"
    are each molecule's tokens plus its end marker (the first pad), the accuracy that matters for
    reconstruction (a 40-token molecule needs nearly all of them right).
    """
    model.eval()
    ids = ids.to(device).long()
    counts = [0, 0, 0, 0, 0]
    mae = torch.zeros(3, device=device)
    for start in range(0, len(ids), batch):
        x = ids[start : start + batch]
        mu, _ = model.encode(x)
        logits = model.decode_logits(mu, x)
        hit = logits.argmax(-1) == x  # (batch, max_length)
        ends = (x != 0).sum(dim=1, keepdim=True)  # index of the end marker (first pad) per molecule
        molecule = torch.arange(x.shape[1], device=device).unsqueeze(0) <= ends  # tokens + end marker
        counts[0] += int(hit.sum())
        counts[1] += x.numel()
        counts[2] += int((hit & molecule).sum())
        counts[3] += int(molecule.sum())
        out = model.generate(mu, temperature=0.0)
        counts[4] += int((out == x).all(dim=1).sum())
        if properties is not None:
            pred = model.predict_properties(mu).float()
            mae += (pred - properties[start : start + len(x)].to(device)).abs().sum(dim=0)
    model.train()
    return tuple(counts), mae


def _eval_record(counts: tuple[int, ...], mae: Tensor, n: int, properties: bool) -> dict[str, float]:
    correct, total, correct_molecule, total_molecule, exact = counts
    result = {
        "test_token_accuracy": correct / max(total, 1),  # all max_length positions, padding included
        "test_molecule_token_accuracy": correct_molecule / max(total_molecule, 1),
        "test_reconstruction_string": exact / max(n, 1),
    }
    if properties:
        for name, value in zip(("logP", "QED", "SAS"), (mae / max(n, 1)).tolist()):
            result[f"test_mae_{name}"] = value
    return result


def quick_eval(model: SmilesVAE, data: MoleculeData, n: int, device: torch.device, batch: int = 500, *,
               recalibrated: bool = False) -> dict[str, float]:
    """Held-out teacher-forced token accuracies (all positions; molecule tokens), greedy exact-string
    reconstruction from the latent mean, and property MAE. The model is first passed through
    :func:`for_evaluation` unless ``recalibrated`` says the caller did."""
    n = min(n, len(data.test_smiles))
    props = None if data.test_properties is None else data.test_properties[:n]
    if not recalibrated:
        model = for_evaluation(model, data.train_ids)
    counts, mae = _eval_counts(model, data.test_ids[:n], props, device, batch)
    return _eval_record(counts, mae, n, props is not None)


def quick_eval_sharded(
    model: SmilesVAE, data: MoleculeData, n: int, device: torch.device, ctx: distrib.DistContext, batch: int = 500,
    *, recalibrated: bool = False,
) -> dict[str, float]:
    """:func:`quick_eval` with the ``n`` held-out molecules split between the ranks (rows ``rank, rank +
    W, ...``); every rank returns the totals. Counts are exact; the property MAE equals one process's
    up to float rounding. On one process it *is* ``quick_eval``. Collective: call it on every rank."""
    if not ctx.distributed:
        return quick_eval(model, data, n, device, batch, recalibrated=recalibrated)
    n = min(n, len(data.test_smiles))
    rows = torch.tensor(distrib.shard_indices(n, ctx.rank, ctx.world_size), dtype=torch.long)
    props = None if data.test_properties is None else data.test_properties[rows]
    if not recalibrated:
        model = for_evaluation(model, data.train_ids)  # the same statistics on every rank (fixed seed)
    counts, mae = _eval_counts(model, data.test_ids[rows], props, device, batch)
    parts = distrib.gather_objects((counts, mae.cpu()), ctx)
    total = tuple(sum(p[0][i] for p in parts) for i in range(len(counts)))
    return _eval_record(total, torch.stack([p[1] for p in parts]).sum(dim=0), n, props is not None)


# ---------------------------------------------------------------------------------------------
# the loop


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _choose_gru_precision(model: SmilesVAE, x: Tensor, device: torch.device) -> bool:
    """Time a few bf16-autocast steps with the GRU in bf16 and in fp32; keep the faster.

    Returns False when bf16 autocast fails both ways (train in fp32 then). Leaves no trace: batch-norm
    statistics and the RNG state are restored afterwards (exact resume).
    """
    timings: dict[bool, float] = {}
    saved_state = {k: v.clone() for k, v in model.state_dict().items()}
    saved_rng = torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.get_rng_state()
    for gru_fp32 in (False, True):
        model.gru_in_fp32 = gru_fp32
        try:
            start = time.perf_counter()
            for repeat in range(4):
                if repeat == 1:  # the first step warms up (cuDNN plans, allocations)
                    _sync(device)
                    start = time.perf_counter()
                with torch.autocast(device.type, dtype=torch.bfloat16):
                    out = model(x)
                    loss = reconstruction_loss(out.logits, x).mean() + gaussian_kl(out.mu.float(), out.logvar.float()).mean()
                loss.backward()
            _sync(device)
            timings[gru_fp32] = time.perf_counter() - start
        except RuntimeError as exc:
            logger.warning("bf16 autocast with gru_in_fp32=%s failed: %s", gru_fp32, str(exc).splitlines()[0])
    model.zero_grad(set_to_none=True)
    model.load_state_dict(saved_state)
    if device.type == "cuda":
        torch.cuda.set_rng_state(saved_rng, device)
    else:
        torch.set_rng_state(saved_rng)
    if not timings:
        model.gru_in_fp32 = False
        return False
    model.gru_in_fp32 = min(timings, key=timings.__getitem__)
    logger.info("bf16 autocast, GRU in %s (3 steps: %s)", "fp32/TF32" if model.gru_in_fp32 else "bf16",
                {("gru fp32" if k else "gru bf16"): round(v, 4) for k, v in timings.items()})
    return True


def _autocast(device: torch.device, use_bf16: bool):
    if device.type == "cuda" and use_bf16:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def train(
    config: TrainConfig,
    out: str | os.PathLike[str],
    *,
    data_dir: str | None = None,
    device: str = "auto",
    seed: int = 0,
    resume: bool = False,
    max_steps: int | None = None,
    max_minutes: float | None = None,
    show_progress: bool = True,
    on_log: Callable[[dict[str, Any]], None] | None = None,
    accumulate: int = 1,
    init_from: str | os.PathLike[str] | None = None,
) -> TrainResult:
    """Train (or resume) a SMILES VAE into run folder ``out``; returns where and why it stopped.

    ``init_from`` (a run folder or an exported folder) starts a new run from those weights and that
    vocabulary, with a fresh optimizer and schedule (fine-tuning); the model sizes and tokenizer must
    match ``config``. A run that already has a checkpoint resumes from it instead.

    ``accumulate = A`` splits each process's share of every batch into ``A`` micro-batches (gradient
    accumulation; a step still covers ``batch_size`` molecules): one process with ``accumulate=N``
    computes what ``N`` processes under ``torchrun`` compute (see the module docstring).
    """
    with distrib.process_group(resolve_device(device)) as ctx:
        return _train(config, Path(out), data_dir=data_dir, ctx=ctx, seed=seed, resume=resume, max_steps=max_steps,
                      max_minutes=max_minutes, show_progress=show_progress, on_log=on_log, accumulate=accumulate,
                      init_from=init_from)


def _check_divisible(batch_size: int, ctx: distrib.DistContext, accumulate: int, what: str) -> None:
    shards = ctx.world_size * accumulate
    if batch_size % shards:
        who = f"{ctx.world_size} processes" + (f" x {accumulate} micro-batches" if accumulate > 1 else "")
        raise UsageError(
            f"{what} {batch_size} is the global batch and must split evenly into {who}; "
            f"use a multiple of {shards} (e.g. {batch_size + shards - batch_size % shards})"
        )


def _train(
    config: TrainConfig,
    run_dir: Path,
    *,
    data_dir: str | None,
    ctx: distrib.DistContext,
    seed: int,
    resume: bool,
    max_steps: int | None,
    max_minutes: float | None,
    show_progress: bool,
    on_log: Callable[[dict[str, Any]], None] | None,
    accumulate: int,
    init_from: str | os.PathLike[str] | None = None,
) -> TrainResult:
    if accumulate < 1:
        raise UsageError(f"accumulate must be >= 1, got {accumulate}")
    dev = ctx.device
    shards = ctx.world_size * accumulate  # each batch is cut into this many strided shards
    budget = TimeBudget(max_minutes)
    if resume and has_checkpoint(run_dir):
        ckpt = load_checkpoint(run_dir, map_location="cpu")
        distrib.check_world_size(int(ckpt.state.get("world_size", 1)), ctx, str(run_dir))
        saved_accumulate = int(ckpt.state.get("accumulate", 1))
        if saved_accumulate != accumulate:
            raise CheckpointError(f"{run_dir} was trained with accumulate={saved_accumulate}, not {accumulate}")
        config = from_dict(TrainConfig, ckpt.config["train"])
        vocab: SmilesVocab | None = SmilesVocab.from_dict(ckpt.config["vocab"])
        seed = int(ckpt.config.get("seed", seed))
    else:
        if resume:
            if ctx.is_main:
                logger.warning("--resume: no checkpoint in %s yet; starting a new run", run_dir)
        elif has_checkpoint(run_dir):
            raise UsageError(f"{run_dir} already holds a checkpoint; pass --resume to continue it or choose another --out")
        ckpt = None
        vocab = None
    init_model: SmilesVAE | None = None
    if ckpt is None and init_from is not None:
        init_model, vocab, init_config = load_model(init_from)
        if init_config.model != config.model or init_config.tokenizer != config.tokenizer:
            raise UsageError(
                f"--init-from {init_from}: its model sizes / tokenizer ({init_config.tokenizer}) differ from this run's "
                f"({config.tokenizer}); start from its config: --config {Path(init_from) / 'config.json'}"
            )
    _check_divisible(config.batch_size, ctx, accumulate, "--batch-size")
    if config.lr_schedule == "budget" and not max_minutes:
        raise UsageError("--lr-schedule budget decays the learning rate over --max-minutes; pass --max-minutes, "
                         "or use --lr-schedule epoch with --lr-decay-start EPOCH")
    if ctx.distributed and "budget" in (config.kl_schedule, config.lr_schedule) and max_minutes is not None \
            and ctx.is_main:
        logger.warning("budget schedules follow the wall clock (rank 0's, broadcast every step): "
                       "not reproducible across runs, resumes or world sizes")
    seed_everything(seed)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    t0 = time.time()
    data = load_molecule_data(config, data_dir, vocab=vocab)
    vocab = data.vocab
    if ctx.is_main:
        logger.info(
            "data: %d train / %d test molecules, %d tokens, %d skipped (%.1fs)",
            len(data.train_smiles), len(data.test_smiles), len(vocab), data.skipped, time.time() - t0,
        )
    if len(data.train_smiles) == 0:
        raise UsageError("no training molecules left after encoding; check --tokenizer and max_length")
    model = SmilesVAE(len(vocab), config.model).to(dev)
    model.property_mean.copy_(data.property_mean.to(dev))
    model.property_std.copy_(data.property_std.to(dev))
    if config.train_only == "encoder":
        if ckpt is None and init_model is None and ctx.is_main:
            logger.warning("--train-only encoder without --init-from trains an encoder for a random, frozen decoder")
        for p in model.decoder_parameters():
            p.requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=config.lr)
    state: dict[str, Any] = {"step": 0, "epoch": 0, "position": 0, "train_seconds": 0.0, "label": config.label}
    if ckpt is not None:
        model.load_state_dict(ckpt.group("model"))
        optimizer.load_state_dict(load_optimizer_tensors(ckpt.group("optimizer")))
        restore_rng_state(ckpt.group(distrib.rng_group(ctx.rank)))
        state.update(ckpt.state)
    elif init_model is not None:
        model.load_state_dict(init_model.state_dict())
        # the property targets below are normalised with this data's statistics: keep the buffers consistent
        model.property_mean.copy_(data.property_mean.to(dev))
        model.property_std.copy_(data.property_std.to(dev))
        state["init_from"] = str(init_from)
    run_config = _run_config(config, vocab, seed)
    metrics = MetricsLogger(run_dir / "metrics.jsonl", enabled=ctx.is_main)
    metrics.truncate_after(int(state["step"]))
    distrib.barrier(ctx)  # nobody writes (or prunes) a checkpoint before every rank has read this one

    # the whole training set on the device
    ids = data.train_ids.to(dev)  # (n_train, max_length) uint8
    n_train = ids.shape[0]
    has_props = data.train_properties is not None and config.property_weight > 0
    props = ((data.train_properties - data.property_mean) / data.property_std).to(dev) if has_props else None
    batch_size = min(config.batch_size, n_train)
    _check_divisible(batch_size, ctx, accumulate, f"the training set has only {n_train} molecules, so the batch of")
    steps_per_epoch = max(1, n_train // batch_size)
    use_bf16 = config.precision == "bf16" and dev.type == "cuda"
    length = config.model.max_length
    if shards > 1:
        state.update(world_size=ctx.world_size, accumulate=accumulate, global_batch=batch_size,
                     batch_per_process=batch_size // ctx.world_size)
        if ctx.is_main:
            logger.info("%d processes x %d micro-batches x %d molecules = %d molecules per optimizer step "
                        "(--batch-size is the global batch)", ctx.world_size, accumulate, batch_size // shards, batch_size)

    evaluation_copy: tuple[int, SmilesVAE] | None = None  # (step, for_evaluation(model)) of the latest request

    def evaluation_model() -> SmilesVAE:
        """:func:`for_evaluation` of the current weights, computed once per step (evaluation and
        checkpoint at the same step share it)."""
        nonlocal evaluation_copy
        if evaluation_copy is None or evaluation_copy[0] != int(state["step"]):
            evaluation_copy = (int(state["step"]), for_evaluation(model, ids))
        return evaluation_copy[1]

    def save() -> None:
        state["train_seconds"] = float(state["train_seconds"])
        rng = distrib.gather_rng_states(ctx, capture_rng_state())  # collective
        if ctx.is_main:
            save_checkpoint(
                run_dir,
                config=run_config,
                # batch-norm statistics recomputed for the saved weights (see for_evaluation); the live
                # model's are left alone, and training never reads them, so resuming stays exact
                tensors={"model": evaluation_model().state_dict(), "optimizer": optimizer_tensors(optimizer.state_dict()), **rng},
                state=dict(state),
            )
        distrib.barrier(ctx)

    lengths = (data.train_ids != 0).sum(dim=1)  # (n_train,) tokens per molecule, on the CPU
    if use_bf16:
        use_bf16 = _choose_gru_precision(model, ids[:batch_size // shards].long(), dev)
        # the timings differ between ranks: rank 0's choice holds everywhere
        use_bf16, model.gru_in_fp32 = distrib.broadcast_object((use_bf16, model.gru_in_fp32), ctx)
    # DDP: the property head gets no gradient when the property loss is off
    net = distrib.wrap_ddp(model, ctx, find_unused_parameters=not has_props) if ctx.distributed else model

    def epoch_order(epoch: int) -> Tensor:
        # kept on the CPU: slicing it and looking up lengths needs no device synchronisation
        return batch_order(lengths, batch_size, seed=seed * 1_000_003 + epoch, bucket=config.bucket_by_length)

    order = epoch_order(int(state["epoch"]))
    total_steps = max_steps if max_steps is not None else int(config.epochs * steps_per_epoch)
    bar = progress(total=total_steps, desc="chem train", disable=not (show_progress and ctx.is_main),
                   initial=int(state["step"]))
    sums = torch.zeros(4, device=dev)  # loss, reconstruction, kl, property (sums over logged steps)
    n_sums = 0
    tick = time.time()
    molecules_since = 0
    stopped = "epochs"
    last: dict[str, Any] = {}
    model.train()
    while True:
        step = int(state["step"])
        epoch_float = state["epoch"] + state["position"] / n_train
        if max_steps is not None and step >= max_steps:
            stopped = "max_steps"
            break
        if epoch_float >= config.epochs:
            stopped = "epochs"
            break
        if distrib.any_rank(budget.expired(), ctx) if max_minutes is not None else False:
            stopped = "max_minutes"
            break
        if state["position"] + batch_size > n_train:
            state["epoch"] = int(state["epoch"]) + 1
            state["position"] = 0
            order = epoch_order(int(state["epoch"]))
        index_cpu = order[state["position"] : state["position"] + batch_size]
        # decode up to the longest molecule's end marker, rounded up to a multiple of 8 (fewer shapes
        # for cuDNN autotuning); from the whole batch, so every rank decodes the same length
        decode_length = min(length, -(-(int(lengths[index_cpu].max()) + 1) // 8) * 8) if config.trim_padding else length
        index = index_cpu.to(dev, non_blocking=True)
        # wall-clock schedules: the fraction of --max-minutes spent, read once per step (under torchrun
        # rank 0's clock decides: one broadcast)
        wall_clock = budget.seconds and "budget" in (config.kl_schedule, config.lr_schedule)
        spent = distrib.broadcast_object(budget.elapsed(), ctx) / budget.seconds if wall_clock else None
        if config.kl_schedule == "budget" and spent is not None:
            weight = kl_weight(spent, midpoint=config.kl_midpoint, slope=config.kl_slope, maximum=config.kl_max)
        elif config.kl_schedule == "budget":  # no --max-minutes: fall back to epochs
            weight = kl_weight(epoch_float, midpoint=4.0, slope=1.0, maximum=config.kl_max)
        else:
            weight = kl_weight(epoch_float, midpoint=config.kl_midpoint, slope=config.kl_slope, maximum=config.kl_max)
        if config.lr_schedule == "budget":  # checked above: budget schedules of the rate need --max-minutes
            lr_now = config.lr * cosine_lr_factor(spent, start=config.lr_decay_start, end=1.0, final=config.lr_final)
        else:
            lr_now = config.lr * cosine_lr_factor(epoch_float, start=config.lr_decay_start, end=config.epochs,
                                                  final=config.lr_final)
        for group in optimizer.param_groups:
            group["lr"] = lr_now
        # one latent-noise draw for the whole batch (identical on every rank), sharded like the rows;
        # one process with one shard keeps drawing it inside the model, as it always has
        noise = torch.randn(batch_size, config.model.latent_dim, device=dev) if shards > 1 else None
        # word dropout: one mask for the whole batch, sharded like the rows (drawn only when enabled, so
        # runs without it consume the RNG exactly as before)
        keep = (torch.rand(batch_size, decode_length, device=dev) >= config.word_dropout
                if config.word_dropout > 0 else None)
        step_sums = torch.zeros(4, device=dev)
        try:
            optimizer.zero_grad(set_to_none=True)
            for j in range(accumulate):
                part = distrib.shard(index, ctx.rank + j * ctx.world_size, shards)
                x = ids[part].long()  # (batch / shards, max_length)
                eps = None if noise is None else distrib.shard(noise, ctx.rank + j * ctx.world_size, shards)
                with distrib.no_sync(net, skip=j < accumulate - 1):  # all-reduce on the last micro-batch only
                    with _autocast(dev, use_bf16):
                        mask = None if keep is None else distrib.shard(keep, ctx.rank + j * ctx.world_size, shards)
                        output = net(x, eps, decode_length=decode_length, token_keep=mask)
                        rec = reconstruction_loss(output.logits, x[:, :decode_length]).mean()
                        kl = gaussian_kl(output.mu.float(), output.logvar.float()).mean()
                        prop = (
                            property_loss(output.property_pred, props[part]).mean() / 3.0
                            if props is not None
                            else torch.zeros((), device=dev)
                        )
                        loss = (rec + weight * kl) / length + config.property_weight * prop
                    (loss / accumulate if accumulate > 1 else loss).backward()
                micro = torch.stack([loss.detach(), rec.detach(), kl.detach(), prop.detach()]).float()
                step_sums += micro / accumulate if accumulate > 1 else micro
        except RuntimeError as exc:  # e.g. a cuDNN build without bf16 GRU kernels
            if not use_bf16 or ctx.distributed:
                raise
            logger.warning("bf16 autocast failed (%s); continuing in fp32 (TF32)", str(exc).splitlines()[0])
            use_bf16 = False
            optimizer.zero_grad(set_to_none=True)
            continue
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(trainable, config.grad_clip)
        optimizer.step()
        sums += step_sums
        n_sums += 1
        molecules_since += batch_size
        state["step"] = step + 1
        state["position"] = int(state["position"]) + batch_size
        bar.update(1)
        step += 1
        if step % LOG_EVERY == 0 or step % config.eval_every == 0 or step == 1:
            distrib.all_reduce_mean_([sums])  # collective: the mean over all ranks' rows
            avg = (sums / n_sums).tolist()
            check_finite(step, {"loss": avg[0], "reconstruction": avg[1], "kl": avg[2], "property": avg[3]})
            now = time.time()
            state["train_seconds"] = float(state["train_seconds"]) + (now - tick)
            record: dict[str, Any] = {
                "epoch": round(epoch_float, 4), "loss": avg[0], "reconstruction_nll": avg[1], "kl": avg[2],
                "property_mse": avg[3], "kl_weight": weight, "lr": lr_now, "molecules_per_second": molecules_since / max(now - tick, 1e-9),
                "bf16": use_bf16, "gru_fp32": bool(model.gru_in_fp32) if use_bf16 else True,
            }
            if shards > 1:
                record.update(world_size=ctx.world_size, global_batch=batch_size)
            if step % config.eval_every == 0:
                record.update(quick_eval_sharded(evaluation_model(), data, config.eval_molecules, dev, ctx,
                                                 recalibrated=True))
            metrics.log(step, **record)
            last = record
            if on_log is not None and ctx.is_main:
                on_log(record)
            bar.set_postfix(loss=f"{avg[0]:.3f}", kl=f"{avg[2]:.1f}", ep=f"{epoch_float:.2f}")
            sums.zero_()
            n_sums = 0
            molecules_since = 0
            tick = time.time()
        if step % config.checkpoint_every == 0:
            save()
    bar.close()
    if n_sums:
        state["train_seconds"] = float(state["train_seconds"]) + (time.time() - tick)
    final = quick_eval_sharded(evaluation_model(), data, config.eval_molecules, dev, ctx, recalibrated=True)
    final["epoch"] = round(state["epoch"] + state["position"] / n_train, 4)
    final["stopped_because"] = stopped
    metrics.log(int(state["step"]), **final)
    last.update(final)
    state["stopped_because"] = stopped
    save()
    if ctx.is_main:
        logger.info("stopped after %d steps (%s); checkpoint in %s", state["step"], stopped, run_dir)
    return TrainResult(run_dir, int(state["step"]), float(final["epoch"]), stopped, last)


def config_from_args(preset_name: str, config_path: str | None, overrides: dict[str, Any]) -> TrainConfig:
    """``--preset``, then ``--config`` JSON, then flags (each overriding the previous)."""
    from metashot.chem.config import PRESETS

    if preset_name not in PRESETS:
        raise UsageError(f"unknown preset {preset_name!r}; choose one of {', '.join(PRESETS)}")
    base = to_dict(PRESETS[preset_name])
    if config_path:
        from metashot.config import load_json

        loaded = load_json(config_path)
        loaded = loaded.get("train", loaded)  # accept a run's config.json too
        model = {**base["model"], **loaded.pop("model", {})}
        base.update(loaded)
        base["model"] = model
    model_over = {k[len("model.") :]: v for k, v in overrides.items() if k.startswith("model.") and v is not None}
    base["model"] = {**base["model"], **model_over}
    base.update({k: v for k, v in overrides.items() if not k.startswith("model.") and v is not None})
    base["model"] = to_dict(from_dict(VAEConfig, base["model"]))
    cfg = from_dict(TrainConfig, base)
    if not math.isfinite(cfg.lr):
        raise UsageError("--lr must be finite")
    return cfg
