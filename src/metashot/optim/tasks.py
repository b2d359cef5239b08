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
# Hidden-layer sizes drawn per problem by ``mnist-mlp-mixed-arch``: the paper's MLP and its 40-unit
# and two-layer generalisation variants.
MIXED_HIDDEN_SIZES: tuple[tuple[int, ...], ...] = ((20,), (40,), (20, 20))


@lru_cache(maxsize=4)
def _mnist_tensors(root: str | None, device: str) -> tuple[Tensor, Tensor]:
    from metashot.data.mnist import load_mnist

    images, labels = load_mnist("train", root=root)
    x = torch.from_numpy(images).reshape(len(images), 784).to(device=device, dtype=torch.float32) / 255.0
    return x, torch.from_numpy(labels).long().to(device)  # (60000, 784) in [0, 1], (60000,)


class MinibatchProblem:
    """A classifier trained with cross-entropy on a fixed (per seed) sequence of minibatches.

    Subclasses give ``logits(params, x)`` and may convert the stored images in ``inputs``.
    """

    def __init__(self, images: Tensor, labels: Tensor, params: dict[str, Tensor], batch_size: int, seed: int) -> None:
        self.images, self.labels = images, labels  # (N, ...), (N,)
        self.params0 = params
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

    def inputs(self, idx: Tensor, params: dict[str, Tensor]) -> Tensor:
        """The network input for the stored examples ``idx`` (the images as stored, by default)."""
        return self.images[idx]

    def logits(self, params: dict[str, Tensor], x: Tensor) -> Tensor:
        raise NotImplementedError

    def loss(self, params: dict[str, Tensor], step: int) -> Tensor:
        idx = self.batch_indices(step)
        return F.cross_entropy(self.logits(params, self.inputs(idx, params)), self.labels[idx])


class MLPProblem(MinibatchProblem):
    """An MLP classifier on MNIST (images ``(N, 784)`` in [0, 1])."""

    def __init__(
        self, images: Tensor, labels: Tensor, params: dict[str, Tensor], activation: str, batch_size: int, seed: int
    ) -> None:
        super().__init__(images, labels, params, batch_size, seed)
        self.activation = activation

    def logits(self, params: dict[str, Tensor], x: Tensor) -> Tensor:
        """``x (batch, 784)`` -> ``(batch, 10)``."""
        act = ACTIVATIONS[self.activation]
        num_layers = len(params) // 2
        for layer in range(num_layers):
            x = torch.addmm(params[f"layer{layer}.bias"], x, params[f"layer{layer}.weight"])
            if layer < num_layers - 1:
                x = act(x)
        return x


@dataclass(frozen=True)
class MNISTMLPTask:
    """MNIST MLP (paper, Section 3.2): one hidden layer of 20 sigmoid units, minibatches of 128.

    Weights and biases start from N(0, 0.01²), as in DeepMind's released ``problems.mnist``; the
    loss is the minibatch training cross-entropy (the quantity the paper plots). ``activation``
    "mixed" draws one of :data:`MIXED_ACTIVATIONS` per problem (our ReLU-robust variant);
    ``hidden_choices``, when not empty, draws the hidden sizes per problem from it instead of using
    ``hidden_sizes`` (after the activation, from the same seeded generator).
    """

    name: str = "mnist-mlp"
    hidden_sizes: tuple[int, ...] = (20,)
    activation: str = "sigmoid"
    batch_size: int = 128
    init_std: float = 0.01
    data_dir: str | None = None
    hidden_choices: tuple[tuple[int, ...], ...] = ()

    def __post_init__(self) -> None:
        if self.activation != "mixed" and self.activation not in ACTIVATIONS:
            raise UsageError(f"unknown activation {self.activation!r}; use one of {sorted(ACTIVATIONS)} or 'mixed'")
        if any(not sizes or min(sizes) < 1 for sizes in (self.hidden_sizes, *self.hidden_choices)):
            raise UsageError(f"hidden sizes must be non-empty and positive, got {self.hidden_sizes} / {self.hidden_choices}")

    def sample(self, seed: int, *, device: torch.device | str = "cpu") -> MLPProblem:
        images, labels = _mnist_tensors(None if self.data_dir is None else os.fspath(self.data_dir), str(device))
        g = torch.Generator().manual_seed(seed)
        activation = self.activation
        if activation == "mixed":
            activation = MIXED_ACTIVATIONS[int(torch.randint(len(MIXED_ACTIVATIONS), (1,), generator=g))]
        hidden = self.hidden_sizes
        if self.hidden_choices:
            hidden = self.hidden_choices[int(torch.randint(len(self.hidden_choices), (1,), generator=g))]
        sizes = (784, *hidden, 10)
        params: dict[str, Tensor] = {}
        for layer, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            params[f"layer{layer}.weight"] = (torch.randn(fan_in, fan_out, generator=g) * self.init_std).to(device)
            params[f"layer{layer}.bias"] = (torch.randn(fan_out, generator=g) * self.init_std).to(device)
        return MLPProblem(images, labels, params, activation, self.batch_size, seed)


# ---------------------------------------------------------------------------------------------------
# CIFAR-10 convolutional network (paper, Section 3.3, Figure 6)

HELDOUT_SEED_START = 2**40  # seeds from here on (validation, test: see optim.evaluate) use the test images
CIFAR10_SUBSETS: dict[str, tuple[int, ...]] = {
    "all": tuple(range(10)),
    "5label": (0, 1, 2, 3, 4),  # airplane, automobile, bird, cat, deer
    "2label": (0, 1),  # airplane, automobile
    "heldout": (5, 6, 7, 8, 9),  # dog, frog, horse, ship, truck: disjoint from the 5- and 2-label sets
}


@lru_cache(maxsize=8)
def _cifar_tensors(root: str | None, split: str, labels: tuple[int, ...], device: str) -> tuple[Tensor, Tensor]:
    from metashot.data.cifar10 import load_cifar10

    images, targets = load_cifar10(split, root=root)
    keep = torch.from_numpy(targets).long()
    mask = torch.zeros(len(keep), dtype=torch.bool)
    remap = torch.full((10,), -1, dtype=torch.long)
    for new, old in enumerate(labels):
        mask |= keep == old
        remap[old] = new
    x = torch.from_numpy(images)[mask].permute(0, 3, 1, 2).contiguous()  # (N, 3, 32, 32) uint8: 4x less memory
    return x.to(device), remap[keep[mask]].to(device)  # labels renumbered 0..len(labels)-1


class ConvNetProblem(MinibatchProblem):
    """A small conv net on CIFAR-10 images, trained with minibatch cross-entropy (batch-norm in training mode).

    Parameters (a flat dict, so any optimizer can take them): ``conv{i}.weight (C_out, C_in, k, k)``
    and ``conv{i}.bn_offset (C_out,)`` per conv layer; ``fc{j}.weight (in, out)`` and ``fc{j}.bn_offset
    (out,)`` per hidden fully connected layer; ``fc{J}.weight``, ``fc{J}.bias`` for the output layer.
    The ``conv``/``fc`` prefixes are what ``--separate-lstms conv,fc`` routes on.
    """

    def inputs(self, idx: Tensor, params: dict[str, Tensor]) -> Tensor:
        """Stored ``(N, 3, 32, 32)`` uint8 images -> floats in [0, 1] of the parameters' dtype."""
        return self.images[idx].to(params["conv0.weight"].dtype) / 255.0

    def logits(self, params: dict[str, Tensor], x: Tensor) -> Tensor:
        """``x (batch, 3, 32, 32)`` float in [0, 1] -> ``(batch, num_classes)``.

        Each conv layer: conv (stride 1, "same" padding) -> batch norm (batch statistics, learned
        offset) -> ReLU -> 2x2 max-pool; each hidden FC layer: linear -> batch norm -> ReLU.
        """
        num_conv = sum(1 for k in params if k.endswith(".weight") and k.startswith("conv"))
        num_fc = sum(1 for k in params if k.endswith(".weight") and k.startswith("fc"))
        for i in range(num_conv):
            weight = params[f"conv{i}.weight"]
            x = F.conv2d(x, weight, padding=weight.shape[-1] // 2)
            x = F.batch_norm(x, None, None, bias=params[f"conv{i}.bn_offset"], training=True)
            x = F.max_pool2d(torch.relu(x), 2, ceil_mode=True)  # ceil: TensorFlow's "SAME" pooling
        x = x.flatten(1)
        for j in range(num_fc - 1):
            x = x @ params[f"fc{j}.weight"]
            x = torch.relu(F.batch_norm(x, None, None, bias=params[f"fc{j}.bn_offset"], training=True))
        last = num_fc - 1
        return torch.addmm(params[f"fc{last}.bias"], x, params[f"fc{last}.weight"])


@dataclass(frozen=True)
class CIFARConvTask:
    """CIFAR-10 conv net (paper, Section 3.3 and Figure 6): three conv layers with max-pooling, one fully
    connected hidden layer of 32 units, ReLU and batch norm, minibatches of 128.

    Sizes follow DeepMind's released ``problems.cifar10(conv_channels=(16, 16, 16), linear_layers=(32,))``:
    16 channels, 5x5 kernels, "same" padding, 2x2 max-pooling; pixels scaled to [0, 1]; weights and
    the output bias from N(0, 0.01²), batch-norm offsets from 0 (Sonnet's ``BatchNorm`` learns an
    offset only). Conv and hidden-layer biases are left out: batch norm cancels them exactly.
    22,602 parameters with 10 classes. Batch norm uses the minibatch's statistics (training mode),
    as the paper's optimizee did.

    Data: problems with seeds below :data:`HELDOUT_SEED_START` (meta-training) draw minibatches from
    the 50k training images; held-out seeds (validation and ``compare``) draw them from the 10k test
    images, as in the paper's Figure 6 (a classifier fitted on a held-out test set). ``labels``
    restricts both to a subset of classes, renumbered 0..k-1 (the output layer has k units).
    The shared copy of CIFAR-10 is decoded from JPEG (lossy): pixels differ slightly from the
    original, which is fine for comparing optimizers.
    """

    name: str = "cifar10-conv"
    labels: tuple[int, ...] = CIFAR10_SUBSETS["all"]
    conv_channels: tuple[int, ...] = (16, 16, 16)
    kernel_size: int = 5
    hidden_sizes: tuple[int, ...] = (32,)
    batch_size: int = 128
    init_std: float = 0.01
    data_dir: str | None = None

    def __post_init__(self) -> None:
        if len(self.labels) < 2 or len(set(self.labels)) != len(self.labels) or not set(self.labels) <= set(range(10)):
            raise UsageError(f"labels must be >= 2 distinct CIFAR-10 classes in 0..9, got {self.labels}")
        if self.kernel_size % 2 != 1:
            raise UsageError(f"kernel_size must be odd ('same' padding), got {self.kernel_size}")

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        """Name -> shape of every optimizee parameter, in creation order."""
        shapes: dict[str, tuple[int, ...]] = {}
        channels, side = 3, 32
        for i, out in enumerate(self.conv_channels):
            shapes[f"conv{i}.weight"] = (out, channels, self.kernel_size, self.kernel_size)
            shapes[f"conv{i}.bn_offset"] = (out,)
            channels, side = out, -(-side // 2)
        sizes = (channels * side * side, *self.hidden_sizes, len(self.labels))
        for j, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            shapes[f"fc{j}.weight"] = (fan_in, fan_out)
            shapes[f"fc{j}.{'bias' if j == len(sizes) - 2 else 'bn_offset'}"] = (fan_out,)
        return shapes

    def sample(self, seed: int, *, device: torch.device | str = "cpu") -> ConvNetProblem:
        split = "test" if seed >= HELDOUT_SEED_START else "train"
        root = None if self.data_dir is None else os.fspath(self.data_dir)
        images, labels = _cifar_tensors(root, split, tuple(self.labels), str(device))
        g = torch.Generator().manual_seed(seed)
        params: dict[str, Tensor] = {}
        for name, shape in self.parameter_shapes().items():
            value = torch.zeros(shape) if name.endswith("bn_offset") else torch.randn(shape, generator=g) * self.init_std
            params[name] = value.to(device)
        return ConvNetProblem(images, labels, params, self.batch_size, seed)


def _cifar(name: str, subset: str) -> Callable[..., Task]:
    return lambda data_dir=None, **kw: CIFARConvTask(name=name, labels=CIFAR10_SUBSETS[subset], data_dir=data_dir, **kw)


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
    "mnist-mlp-mixed-arch": lambda data_dir=None, **kw: MNISTMLPTask(
        name="mnist-mlp-mixed-arch", activation="mixed", hidden_choices=MIXED_HIDDEN_SIZES, data_dir=data_dir, **kw
    ),
    "cifar10-conv": _cifar("cifar10-conv", "all"),
    "cifar10-conv-5label": _cifar("cifar10-conv-5label", "5label"),
    "cifar10-conv-2label": _cifar("cifar10-conv-2label", "2label"),
    "cifar10-conv-heldout": _cifar("cifar10-conv-heldout", "heldout"),
}


def list_tasks() -> list[str]:
    """Names accepted by ``--task``."""
    return list(TASKS)


def make_task(name: str, *, data_dir: str | os.PathLike[str] | None = None, **options: object) -> Task:
    """Build task ``name``; ``options`` go to its constructor (e.g. ``num_problems`` for quadratic)."""
    if name not in TASKS:
        raise UsageError(f"unknown task {name!r}; choose from {', '.join(list_tasks())}")
    return TASKS[name](data_dir=None if data_dir is None else os.fspath(data_dir), **options)
