"""Task families: what the learned optimizer is trained and tested on (paper, Section 3).

A **task** is a family of optimization problems; a **problem** (an *optimizee*) is one member: a
starting point θ_0 and a sequence of losses f_t (one minibatch per step t). Both are small
``Protocol`` s, after learned_optimization's ``Task``, so users can add their own::

    class MyProblem:                      # satisfies Problem
        def init(self) -> dict[str, Tensor]: ...              # fresh θ_0
        def loss(self, params: dict[str, Tensor], step: int) -> Tensor: ...   # f_step(θ), scalar

    class MyTask:                         # satisfies Task
        name = "my-task"
        def sample(self, seed: int, *, device="cpu") -> MyProblem: ...

Everything a problem does is a pure function of ``seed``: the same seed gives the same θ_0, the
same data and the same minibatch sequence, whichever optimizer runs it. That is how every optimizer
is scored on identical held-out initialisations and minibatches. ``loss`` must be differentiable
in ``params`` with plain torch ops (meta-training differentiates through the parameter updates).
A problem that bundles several independent optimizees sums (not averages) their losses, so each
coordinate sees its own optimizee's gradient at its natural scale.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import Tensor

from metashot.errors import UsageError

# ---------------------------------------------------------------------------------------------------
# the interface


@runtime_checkable
class Problem(Protocol):
    """One optimizee: ``init()`` gives a fresh θ_0, ``loss(params, step)`` the scalar f_step(θ)."""

    def init(self) -> dict[str, Tensor]: ...

    def loss(self, params: dict[str, Tensor], step: int) -> Tensor: ...


@runtime_checkable
class Task(Protocol):
    """A family of problems; ``sample(seed)`` is deterministic in ``seed``."""

    name: str

    def sample(self, seed: int, *, device: torch.device | str = "cpu") -> Problem: ...


# ---------------------------------------------------------------------------------------------------
# random quadratics


class QuadraticProblem:
    """f(θ) = Σ_b ||W_b θ_b − y_b||², W_b (d, d), y_b (d,) ~ N(0, 1); θ_0 ~ N(0, init_std²)."""

    def __init__(self, weight: Tensor, target: Tensor, theta0: Tensor) -> None:
        self.weight, self.target, self.theta0 = weight, target, theta0  # (B, d, d), (B, d), (B, d)

    def init(self) -> dict[str, Tensor]:
        return {"theta": self.theta0.clone()}

    def loss(self, params: dict[str, Tensor], step: int) -> Tensor:
        residual = torch.bmm(self.weight, params["theta"].unsqueeze(-1)).squeeze(-1) - self.target  # (B, d)
        return residual.pow(2).sum()


@dataclass(frozen=True)
class QuadraticTask:
    """Random 10-D quadratics (paper, Section 3.1). ``num_problems`` > 1 bundles independent ones."""

    num_dims: int = 10
    num_problems: int = 1
    init_std: float = 0.01  # DeepMind's released problems.quadratic
    name: str = "quadratic"

    def sample(self, seed: int, *, device: torch.device | str = "cpu") -> QuadraticProblem:
        g = torch.Generator().manual_seed(seed)
        b, d = self.num_problems, self.num_dims
        weight = torch.randn(b, d, d, generator=g)
        target = torch.randn(b, d, generator=g)
        theta0 = torch.randn(b, d, generator=g) * self.init_std
        return QuadraticProblem(weight.to(device), target.to(device), theta0.to(device))


# ---------------------------------------------------------------------------------------------------
# MNIST multi-layer perceptrons

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "sigmoid": torch.sigmoid,
    "relu": torch.relu,
    "tanh": torch.tanh,
    "elu": F.elu,
}
MIXED_ACTIVATIONS = ("sigmoid", "relu", "tanh", "elu")


@lru_cache(maxsize=4)
def _mnist_tensors(root: str | None, device: str) -> tuple[Tensor, Tensor]:
    from metashot.data.mnist import load_mnist

    images, labels = load_mnist("train", root=root)
    x = torch.from_numpy(images).reshape(len(images), 784).to(device=device, dtype=torch.float32) / 255.0
    return x, torch.from_numpy(labels).long().to(device)  # (60000, 784) in [0, 1], (60000,)


class MLPProblem:
    """An MLP classifier on MNIST: cross-entropy on a fixed (per seed) sequence of minibatches."""

    def __init__(
        self, images: Tensor, labels: Tensor, params: dict[str, Tensor], activation: str, batch_size: int, seed: int
    ) -> None:
        self.images, self.labels = images, labels  # (N, 784), (N,)
        self.params0 = params
        self.activation = activation
        self.batch_size = batch_size
        self._batch_generator = torch.Generator().manual_seed(seed + 1)
        self._batches: list[Tensor] = []

    def init(self) -> dict[str, Tensor]:
        return {k: v.clone() for k, v in self.params0.items()}

    def batch_indices(self, step: int) -> Tensor:
        """Indices ``(batch_size,)`` of minibatch ``step`` (drawn uniformly, fixed by the seed)."""
        while len(self._batches) <= step:
            idx = torch.randint(len(self.images), (self.batch_size,), generator=self._batch_generator)
            self._batches.append(idx.to(self.images.device))
        return self._batches[step]

    def logits(self, params: dict[str, Tensor], x: Tensor) -> Tensor:
        """``x (batch, 784)`` -> ``(batch, 10)``."""
        act = ACTIVATIONS[self.activation]
        num_layers = len(params) // 2
        for layer in range(num_layers):
            x = torch.addmm(params[f"layer{layer}.bias"], x, params[f"layer{layer}.weight"])
            if layer < num_layers - 1:
                x = act(x)
        return x

    def loss(self, params: dict[str, Tensor], step: int) -> Tensor:
        idx = self.batch_indices(step)
        return F.cross_entropy(self.logits(params, self.images[idx]), self.labels[idx])


@dataclass(frozen=True)
class MNISTMLPTask:
    """MNIST MLP (paper, Section 3.2): one hidden layer of 20 sigmoid units, minibatches of 128.

    Weights and biases start from N(0, 0.01²), as in DeepMind's released ``problems.mnist``; the
    loss is the minibatch training cross-entropy (the quantity the paper plots). ``activation``
    "mixed" draws one of :data:`MIXED_ACTIVATIONS` per problem (our ReLU-robust variant).
    """

    name: str = "mnist-mlp"
    hidden_sizes: tuple[int, ...] = (20,)
    activation: str = "sigmoid"
    batch_size: int = 128
    init_std: float = 0.01
    data_dir: str | None = None

    def __post_init__(self) -> None:
        if self.activation != "mixed" and self.activation not in ACTIVATIONS:
            raise UsageError(f"unknown activation {self.activation!r}; use one of {sorted(ACTIVATIONS)} or 'mixed'")

    def sample(self, seed: int, *, device: torch.device | str = "cpu") -> MLPProblem:
        images, labels = _mnist_tensors(None if self.data_dir is None else os.fspath(self.data_dir), str(device))
        g = torch.Generator().manual_seed(seed)
        activation = self.activation
        if activation == "mixed":
            activation = MIXED_ACTIVATIONS[int(torch.randint(len(MIXED_ACTIVATIONS), (1,), generator=g))]
        sizes = (784, *self.hidden_sizes, 10)
        params: dict[str, Tensor] = {}
        for layer, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            params[f"layer{layer}.weight"] = (torch.randn(fan_in, fan_out, generator=g) * self.init_std).to(device)
            params[f"layer{layer}.bias"] = (torch.randn(fan_out, generator=g) * self.init_std).to(device)
        return MLPProblem(images, labels, params, activation, self.batch_size, seed)


# ---------------------------------------------------------------------------------------------------
# registry

TASKS: dict[str, Callable[..., Task]] = {
    "quadratic": lambda data_dir=None, **kw: QuadraticTask(**kw),
    "mnist-mlp": lambda data_dir=None, **kw: MNISTMLPTask(name="mnist-mlp", data_dir=data_dir, **kw),
    "mnist-mlp-wide": lambda data_dir=None, **kw: MNISTMLPTask(
        name="mnist-mlp-wide", hidden_sizes=(40,), data_dir=data_dir, **kw
    ),
    "mnist-mlp-deep": lambda data_dir=None, **kw: MNISTMLPTask(
        name="mnist-mlp-deep", hidden_sizes=(20, 20), data_dir=data_dir, **kw
    ),
    "mnist-mlp-relu": lambda data_dir=None, **kw: MNISTMLPTask(
        name="mnist-mlp-relu", activation="relu", data_dir=data_dir, **kw
    ),
    "mnist-mlp-mixed": lambda data_dir=None, **kw: MNISTMLPTask(
        name="mnist-mlp-mixed", activation="mixed", data_dir=data_dir, **kw
    ),
}


def list_tasks() -> list[str]:
    """Names accepted by ``--task``."""
    return list(TASKS)


def make_task(name: str, *, data_dir: str | os.PathLike[str] | None = None, **options: object) -> Task:
    """Build task ``name``; ``options`` go to its constructor (e.g. ``num_problems`` for quadratic)."""
    if name not in TASKS:
        raise UsageError(f"unknown task {name!r}; choose from {', '.join(list_tasks())}")
    return TASKS[name](data_dir=None if data_dir is None else os.fspath(data_dir), **options)
