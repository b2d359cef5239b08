"""Evaluation on a fixed, seeded test set, and rebuilding models from checkpoints.

``evaluate_model`` is the single code path behind ``metashot rnn evaluate``, the per-epoch curves
written by training, and ``report.py``, so they agree for the same seed.
"""

from __future__ import annotations

import copy
import os
from typing import Any

import torch
from torch import nn

from metashot.config import from_dict
from metashot.errors import CheckpointError, UsageError
from metashot.rnn.bn_lstm import _StepBatchNorm, recalibrate_batch_norm
from metashot.rnn.config import TrainConfig
from metashot.rnn.sequence_models import MODELS
from metashot.rnn.tasks import ADDING_TOLERANCE, AddingTask, FrequencyTask, SequenceBatch, fixed_test_set
from metashot.training import load_checkpoint, resolve_device

TEST_SEED = 20_161_205  # test sets are drawn from TEST_SEED + --seed; training uses other streams
# BN-LSTM evaluation first recomputes its per-step statistics ("precise BN") on this many training-
# distribution batches (of the training batch size) drawn from this fixed stream.
RECALIBRATION_SEED = 20_161_204
RECALIBRATION_BATCHES = 64
DEFAULT_TEST_EXAMPLES = 2000


def build_model(config: TrainConfig) -> nn.Module:
    """The model ``config`` describes, freshly initialised (seed the global RNG first)."""
    task = config.task.build()
    m = config.model
    return MODELS[m.model](
        input_size=task.input_size,
        hidden_size=m.hidden_size,
        output_size=task.output_size,
        num_layers=m.num_layers,
        r_on=m.r_on,
        learn_r_on=m.learn_r_on,
        leak=m.leak,
        period_init_range=tuple(m.period_init_range),
        max_steps=task.max_steps,
        time_input_scale=m.time_input_scale,
    )


def test_set(config: TrainConfig, num_examples: int = DEFAULT_TEST_EXAMPLES, seed: int = 0) -> list[SequenceBatch]:
    """The fixed test set of ``config``'s task and sampling."""
    return fixed_test_set(config.task.build(), num_examples, TEST_SEED + seed)


def _loss_and_hits(model: nn.Module, task: FrequencyTask | AddingTask, batch: SequenceBatch) -> tuple[torch.Tensor, torch.Tensor]:
    out = model(batch.inputs, batch.times, batch.lengths)
    if task.regression:
        pred = out.squeeze(-1)
        return nn.functional.mse_loss(pred, batch.targets), ((pred - batch.targets).abs() < ADDING_TOLERANCE)
    return nn.functional.cross_entropy(out, batch.targets), (out.argmax(-1) == batch.targets)


def for_evaluation(model: nn.Module, config: TrainConfig, device: torch.device | str = "cpu") -> nn.Module:
    """``model`` itself, or for a BN-LSTM a copy whose per-step statistics are recomputed with the
    current weights (:func:`~metashot.rnn.bn_lstm.recalibrate_batch_norm` on ``RECALIBRATION_BATCHES``
    fixed training-distribution batches); the caller's (training) model keeps its statistics."""
    if not any(isinstance(m, _StepBatchNorm) for m in model.modules()):
        return model
    model = copy.deepcopy(model)
    task = config.task.build()
    generator = torch.Generator().manual_seed(RECALIBRATION_SEED)
    recalibrate_batch_norm(model, (task.batch(config.batch_size, generator).to(device)[:3]
                                   for _ in range(RECALIBRATION_BATCHES)))
    return model


@torch.no_grad()
def evaluate_model(
    model: nn.Module, config: TrainConfig, batches: list[SequenceBatch], device: torch.device | str = "cpu",
    *, recalibrated: bool = False,
) -> dict[str, Any]:
    """Accuracy (fraction in [0, 1]) and mean loss on ``batches``; for Phased LSTMs also the
    fraction of neuron updates made while the gate is open (k > 0 with leak 0, real steps only)
    and the mean openness (the average fraction of a full update actually applied).
    A BN-LSTM is first passed through :func:`for_evaluation` unless ``recalibrated`` says the caller did."""
    task = config.task.build()
    if not recalibrated:
        model = for_evaluation(model, config, device)
    was_training = model.training
    model.eval()
    hits = total = 0
    loss_sum = 0.0
    open_updates = updates = 0
    openness_sum = 0.0
    for batch in batches:
        batch = batch.to(device)
        loss, correct = _loss_and_hits(model, task, batch)
        loss_sum += float(loss) * len(correct)
        hits += int(correct.sum())
        total += len(correct)
        rnn = getattr(model, "rnn", None)
        if hasattr(rnn, "openness"):
            k = rnn.openness(batch.times, lengths=batch.lengths)  # (L, T, B, H), 0 at padding
            real = int(batch.lengths.sum()) * k.shape[0] * k.shape[-1]
            open_updates += int((k > 0).sum())
            openness_sum += float(k.sum())
            updates += real
    model.train(was_training)
    result: dict[str, Any] = {"accuracy": hits / max(total, 1), "loss": loss_sum / max(total, 1), "examples": total}
    if updates:
        result["open_update_fraction"] = open_updates / updates
        result["mean_openness"] = openness_sum / updates
    return result


def load_trained(path: str | os.PathLike[str], device: torch.device | str = "cpu") -> tuple[nn.Module, TrainConfig, dict[str, Any]]:
    """Rebuild the model saved in a run folder (or checkpoint folder): ``(model, config, state)``."""
    checkpoint = load_checkpoint(path, groups=["model"])
    try:
        config = from_dict(TrainConfig, checkpoint.config)
    except UsageError as exc:
        raise CheckpointError(f"{path}: config.json is not an rnn training config ({exc})") from None
    model = build_model(config)
    try:
        model.load_state_dict(checkpoint.group("model"))
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not match the config ({str(exc).splitlines()[0]})") from None
    return model.to(device), config, checkpoint.state


def evaluate_checkpoint(
    path: str | os.PathLike[str], *, num_examples: int = DEFAULT_TEST_EXAMPLES, seed: int = 0, device: str = "auto"
) -> dict[str, Any]:
    """What ``metashot rnn evaluate --checkpoint PATH --json`` prints."""
    dev = resolve_device(device)
    model, config, state = load_trained(path, dev)
    result = evaluate_model(model, config, test_set(config, num_examples, seed), dev)
    return {
        **result,
        "task": config.task.name,
        "sampling": config.task.sampling if config.task.name == "frequency" else None,
        "model": config.model.model,
        "hidden_size": config.model.hidden_size,
        "epoch": state.get("epoch"),
        "step": state.get("step"),
        "test_seed": TEST_SEED + seed,
    }
