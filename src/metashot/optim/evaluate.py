"""Score optimizers side by side on the same held-out problems (paper, Section 3, Figures 2-5).

Every optimizer — the learned one and the baselines (SGD, Nesterov, RMSprop, Adam, each with its
learning rate tuned by grid search, as in the paper) — runs through the same loop
(:func:`run_optimizer`: ``zero_grad``, minibatch loss, ``backward``, ``step``) on the same problem
seeds, hence the same initialisations and minibatch sequences.

Problem seeds are split three ways so that nothing is tuned or selected on the test problems:
meta-training draws seeds below 2**40, validation (model selection, learning-rate tuning) uses
``2**41 + i`` and testing (``compare``) uses ``2**42 + 100_003 * seed + i``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.optim import SGD, Adam, Optimizer, RMSprop

from metashot.optim.coordinatewise import CoordinatewiseLSTM
from metashot.optim.learned import LearnedOptimizer
from metashot.optim.tasks import HELDOUT_SEED_START, Problem, Task

logger = logging.getLogger(__name__)

VAL_SEED_BASE = 2**41
TEST_SEED_BASE = 2**42
TRAIN_SEED_LIMIT = HELDOUT_SEED_START  # 2**40; CIFAR tasks use their test images from here on
LR_GRID: tuple[float, ...] = tuple(10 ** (k / 2) for k in range(-8, 3))  # 1e-4, 3.2e-4, ..., 10
TUNE_TAIL = 10  # tuning criterion: mean loss over the last TUNE_TAIL steps (less noisy than one minibatch)

MEASURE = (
    "minibatch training loss f_t(theta_t) before update t (curve[t], t = 0..steps; curve[steps] is the loss after "
    "the last update), mean over runs; every optimizer runs the same problem seeds (initialisations, data and "
    "minibatch sequences); final_loss = curve[steps]; baselines use the learning rate from the grid that minimised "
    "the mean loss of the last 10 steps on separate validation problems"
)

BASELINES: dict[str, Callable[[list[Tensor], float], Optimizer]] = {
    "adam": lambda params, lr: Adam(params, lr=lr),
    "rmsprop": lambda params, lr: RMSprop(params, lr=lr),
    "nag": lambda params, lr: SGD(params, lr=lr, momentum=0.9, nesterov=True),
    "sgd": lambda params, lr: SGD(params, lr=lr),
}
OPTIMIZER_NAMES = ("lstm", *BASELINES)


def list_optimizers() -> list[str]:
    """Names accepted by ``compare --optimizers``."""
    return list(OPTIMIZER_NAMES)


def val_problem_seed(i: int) -> int:
    return VAL_SEED_BASE + i


def heldout_problem_seed(seed: int, i: int) -> int:
    return TEST_SEED_BASE + 100_003 * seed + i


# ---------------------------------------------------------------------------------------------------
# running one optimizer


def run_optimizer(
    problem: Problem, make_optimizer: Callable[[list[tuple[str, Tensor]]], Optimizer], steps: int
) -> list[float]:
    """Optimize ``problem`` for ``steps`` steps; return the loss curve (``steps + 1`` floats).

    ``make_optimizer`` receives the named parameters ``[(name, tensor), ...]`` (every
    ``torch.optim.Optimizer`` accepts them; a learned optimizer with separate LSTMs routes by name).
    A run that diverges (non-finite loss) is stopped and the rest of its curve is ``inf``.
    """
    params = {k: v.detach().clone().requires_grad_(True) for k, v in problem.init().items()}
    optimizer = make_optimizer(list(params.items()))
    curve: list[float] = []
    for t in range(steps):
        optimizer.zero_grad(set_to_none=True)
        loss = problem.loss(params, t)
        value = float(loss.detach())
        if not math.isfinite(value):
            return curve + [math.inf] * (steps + 1 - len(curve))
        curve.append(value)
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        value = float(problem.loss(params, steps))
    curve.append(value if math.isfinite(value) else math.inf)
    return curve


NamedParams = list[tuple[str, Tensor]]


def learned_factory(net: CoordinatewiseLSTM) -> Callable[[NamedParams], Optimizer]:
    return lambda params: LearnedOptimizer(params, net=net)


def baseline_factory(name: str, lr: float) -> Callable[[NamedParams], Optimizer]:
    return lambda params: BASELINES[name](params, lr)


def run_many(
    task: Task, make_optimizer: Callable[[NamedParams], Optimizer], seeds: Sequence[int], steps: int, device: str
) -> list[list[float]]:
    """One curve per problem seed."""
    return [run_optimizer(task.sample(s, device=device), make_optimizer, steps) for s in seeds]


# ---------------------------------------------------------------------------------------------------
# tuning and summarising


def _tail_score(curves: list[list[float]]) -> float:
    values = [sum(c[-TUNE_TAIL:]) / len(c[-TUNE_TAIL:]) for c in curves]
    score = sum(values) / len(values)
    return score if math.isfinite(score) else math.inf


def tune_learning_rate(
    task: Task, name: str, *, steps: int, runs: int, device: str, grid: Sequence[float] = LR_GRID
) -> tuple[float, dict[str, float]]:
    """Grid-search ``name``'s learning rate on validation problems; return ``(best_lr, scores)``."""
    seeds = [val_problem_seed(i) for i in range(runs)]
    scores = {f"{lr:.3g}": _tail_score(run_many(task, baseline_factory(name, lr), seeds, steps, device)) for lr in grid}
    best = min(grid, key=lambda lr: scores[f"{lr:.3g}"])
    return best, scores


def summarize(curves: list[list[float]]) -> dict[str, Any]:
    """Mean curve, its per-step standard deviation and the final-loss statistics over runs."""
    data = torch.tensor(curves, dtype=torch.float64)  # (runs, steps + 1)
    finite = torch.isfinite(data).all(dim=0)
    mean = data.mean(dim=0)
    std = data.std(dim=0, unbiased=True) if len(curves) > 1 else torch.zeros_like(mean)
    std = torch.where(finite, std, torch.full_like(std, math.inf))
    final = data[:, -1]
    ci95 = 1.96 * float(std[-1]) / math.sqrt(len(curves))
    return {
        "final_loss": float(final.mean()),
        "final_loss_std": float(std[-1]),
        "final_loss_ci95": ci95,
        "curve": [float(v) for v in mean],
        "curve_std": [float(v) for v in std],
        "runs_diverged": int((~torch.isfinite(final)).sum()),
        "final_losses": [float(v) for v in final],  # per run, in test-seed order (paired across optimizers)
    }


def paired_difference(lstm: Sequence[float], baseline: Sequence[float]) -> tuple[float, float]:
    """Mean of the per-problem differences ``lstm - baseline`` and its 95% CI half-width (1.96 standard
    errors; 0 with one problem). Every optimizer runs the same problem seeds, so the pairs share
    initialisation and minibatches: this interval is much narrower than the two means' own CIs.

    Raises:
        ValueError: the two lists differ in length (not paired).
    """
    if len(lstm) != len(baseline) or not lstm:
        raise ValueError(f"paired_difference needs two equally long non-empty lists, got {len(lstm)} and {len(baseline)}")
    diffs = [a - b for a, b in zip(lstm, baseline)]
    n = len(diffs)
    mean = sum(diffs) / n
    var = sum((d - mean) ** 2 for d in diffs) / (n - 1) if n > 1 else 0.0
    return mean, 1.96 * math.sqrt(var / n)


def compare(
    task: Task,
    net: CoordinatewiseLSTM | None,
    *,
    steps: int = 100,
    runs: int = 20,
    seed: int = 0,
    device: str = "cpu",
    optimizers: Sequence[str] = OPTIMIZER_NAMES,
    tune_runs: int = 3,
    grid: Sequence[float] = LR_GRID,
) -> dict[str, Any]:
    """The ``metashot optim compare`` result: every optimizer on ``runs`` test problems.

    Returns:
        ``{"task", "steps", "runs", "seed", "measure", "optimizers": {name: {"final_loss", "curve",
        "lr", "final_losses", ...}}}``; baselines also carry ``lr_scores`` (the tuning grid) and
        ``lstm_wins``: on how many of the (paired) test problems the LSTM ended lower, and
        ``lstm_minus``: ``{"mean", "ci95"}`` of the per-problem final-loss differences LSTM − baseline
        (:func:`paired_difference`; negative: the LSTM ends lower).
    """
    seeds = [heldout_problem_seed(seed, i) for i in range(runs)]
    results: dict[str, Any] = {}
    for name in optimizers:
        if name == "lstm":
            if net is None:
                raise ValueError("compare needs a net for the 'lstm' optimizer")
            net = net.to(device)
            curves = run_many(task, learned_factory(net), seeds, steps, device)
            results[name] = {**summarize(curves), "lr": 1.0, "lstm_groups": list(net.config.lstm_groups)}
        else:
            lr, scores = tune_learning_rate(task, name, steps=steps, runs=tune_runs, device=device, grid=grid)
            curves = run_many(task, baseline_factory(name, lr), seeds, steps, device)
            results[name] = {**summarize(curves), "lr": lr, "lr_scores": scores}
        logger.info("%s: final loss %.4g (lr %s)", name, results[name]["final_loss"], results[name]["lr"])
    if "lstm" in results:
        lstm_final = results["lstm"]["final_losses"]
        for name, entry in results.items():
            if name != "lstm":
                entry["lstm_wins"] = sum(a < b for a, b in zip(lstm_final, entry["final_losses"]))
                mean, ci95 = paired_difference(lstm_final, entry["final_losses"])
                entry["lstm_minus"] = {"mean": mean, "ci95": ci95}
    return {
        "task": task.name,
        "steps": steps,
        "runs": runs,
        "seed": seed,
        "measure": MEASURE,
        "tune_runs": tune_runs,
        "lr_grid": [float(v) for v in grid],
        "optimizers": results,
    }
