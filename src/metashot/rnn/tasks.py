"""The Phased LSTM paper's synthetic tasks, generated on the fly from a ``torch.Generator``.

Neil et al. 2016 (https://arxiv.org/abs/1610.09513), section 3:

- ``frequency``: task 1, frequency discrimination. A sine wave with period P, log-uniform in
  [1, 100] ms (half of each batch drawn uniformly from [5, 6] ms instead), random phase, lasting
  U(15, 125) ms; class 1 iff 5 <= P <= 6. Three samplings: ``standard`` (every 1 ms),
  ``high_resolution`` (every 0.1 ms: up to 1250 steps) and ``async`` (as many samples as
  ``standard`` would take, at uniformly random times).
- ``adding``: the long-memory adding task (Hochreiter & Schmidhuber 1997) the paper uses for long
  sequences: a stream of U(0, 1) numbers with two of them marked (one in each half); the target is
  their sum. Timestamps are step indices. Accuracy = fraction with ``|error| < 0.04``.

Every batch is ``SequenceBatch`` (batch-first, padded, with ``lengths``); the same seed gives the
same batches on every machine (generated on the CPU, then moved).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import torch
from torch import Tensor

from metashot.errors import UsageError

SAMPLINGS = ("standard", "high_resolution", "async")
SAMPLING_ALIASES = {"standard": "standard", "high_resolution": "high_resolution", "high-resolution": "high_resolution",
                    "highres": "high_resolution", "async": "async", "asynchronous": "async"}
ADDING_TOLERANCE = 0.04

# ---------------------------------------------------------------------------------------------


class SequenceBatch(NamedTuple):
    """A padded batch, batch-first.

    Attributes:
        inputs: ``(B, T, input_size)``, zeros at padded steps.
        times: ``(B, T)`` non-decreasing timestamps (padded steps repeat the last real time).
        lengths: ``(B,)`` number of real steps of each sequence.
        targets: ``(B,)`` class indices (long) or regression targets (float).
    """

    inputs: Tensor
    times: Tensor
    lengths: Tensor
    targets: Tensor

    def to(self, device: torch.device | str) -> SequenceBatch:
        return SequenceBatch(*(t.to(device) for t in self))


class Task(Protocol):
    """What a trainer needs from a task."""

    name: str
    input_size: int
    output_size: int  # classes, or 1 for regression
    regression: bool

    def batch(self, batch_size: int, generator: torch.Generator) -> SequenceBatch: ...


def _padded_times(lengths: Tensor, times: Tensor) -> Tensor:
    """Replace times after each sequence's end by its last real time. times: ``(B, T)``."""
    steps = torch.arange(times.shape[1]).unsqueeze(0)
    last = times.gather(1, (lengths - 1).unsqueeze(1))
    return torch.where(steps < lengths.unsqueeze(1), times, last)


# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class FrequencyTask:
    """Task 1 of the paper: is the sine wave's period in ``target_period`` (ms)? Times in ms."""

    sampling: str = "standard"
    min_period: float = 1.0
    max_period: float = 100.0
    target_period: tuple[float, float] = (5.0, 6.0)
    min_duration: float = 15.0
    max_duration: float = 125.0
    positive_fraction: float = 0.5
    name: str = "frequency"
    input_size: int = 1
    output_size: int = 2
    regression: bool = False

    def __post_init__(self) -> None:
        if self.sampling not in SAMPLING_ALIASES:
            raise UsageError(f"unknown sampling {self.sampling!r}; choose one of {', '.join(SAMPLINGS)}")
        object.__setattr__(self, "sampling", SAMPLING_ALIASES[self.sampling])
        if not 0 < self.min_period < self.max_period or not 0 < self.min_duration <= self.max_duration:
            raise UsageError("FrequencyTask: need 0 < min_period < max_period and 0 < min_duration <= max_duration")

    @property
    def resolution(self) -> float:
        """Sampling interval in ms of the regular samplings (``async``: mean interval)."""
        return 0.1 if self.sampling == "high_resolution" else 1.0

    @property
    def max_steps(self) -> int:
        return math.ceil(self.max_duration / self.resolution)

    def batch(self, batch_size: int, generator: torch.Generator) -> SequenceBatch:
        """Draw ``batch_size`` sequences: inputs ``(B, T, 1)``, targets ``(B,)`` in {0, 1}."""
        g = generator
        low, high = math.log(self.min_period), math.log(self.max_period)
        period = torch.exp(low + (high - low) * torch.rand(batch_size, generator=g))
        forced = torch.rand(batch_size, generator=g) < self.positive_fraction
        t_low, t_high = self.target_period
        period = torch.where(forced, t_low + (t_high - t_low) * torch.rand(batch_size, generator=g), period)
        targets = ((period >= t_low) & (period <= t_high)).long()
        offset = period * torch.rand(batch_size, generator=g)  # random phase
        duration = self.min_duration + (self.max_duration - self.min_duration) * torch.rand(batch_size, generator=g)
        lengths = torch.ceil(duration / self.resolution).long().clamp_min(1)
        steps = int(lengths.max())
        index = torch.arange(steps).unsqueeze(0)  # (1, T)
        valid = index < lengths.unsqueeze(1)  # (B, T)
        if self.sampling == "async":
            u = torch.rand(batch_size, steps, generator=g).masked_fill(~valid, math.inf)
            times = u.sort(dim=1).values.masked_fill(~valid, 0.0) * duration.unsqueeze(1)
        else:
            times = index * self.resolution + torch.zeros(batch_size, 1)
        times = _padded_times(lengths, times)
        inputs = torch.sin(2 * math.pi * (times + offset.unsqueeze(1)) / period.unsqueeze(1)) * valid
        return SequenceBatch(inputs.unsqueeze(-1), times, lengths, targets)


@dataclass(frozen=True, kw_only=True)
class AddingTask:
    """The adding task for long sequences: inputs ``(value, marker)``, target = sum of marked values."""

    min_length: int = 490
    max_length: int = 510
    name: str = "adding"
    input_size: int = 2
    output_size: int = 1
    regression: bool = True

    def __post_init__(self) -> None:
        if not 2 <= self.min_length <= self.max_length:
            raise UsageError(f"AddingTask: need 2 <= min_length <= max_length, got {self.min_length}, {self.max_length}")

    @property
    def max_steps(self) -> int:
        return self.max_length

    def batch(self, batch_size: int, generator: torch.Generator) -> SequenceBatch:
        """Draw ``batch_size`` sequences: inputs ``(B, T, 2)``, float targets ``(B,)`` in [0, 2]."""
        g = generator
        lengths = torch.randint(self.min_length, self.max_length + 1, (batch_size,), generator=g)
        steps = int(lengths.max())
        valid = torch.arange(steps).unsqueeze(0) < lengths.unsqueeze(1)
        values = torch.rand(batch_size, steps, generator=g) * valid
        half = lengths // 2
        first = (torch.rand(batch_size, generator=g) * half).long()
        second = half + (torch.rand(batch_size, generator=g) * (lengths - half)).long()
        markers = torch.zeros(batch_size, steps)
        rows = torch.arange(batch_size)
        markers[rows, first] = 1.0
        markers[rows, second] = 1.0
        targets = values[rows, first] + values[rows, second]
        times = _padded_times(lengths, torch.arange(steps, dtype=torch.float32).expand(batch_size, steps).clone())
        return SequenceBatch(torch.stack([values, markers], dim=-1), times, lengths, targets)


TASKS: dict[str, type] = {"frequency": FrequencyTask, "adding": AddingTask}


def list_tasks() -> list[str]:
    """Names of the registered tasks."""
    return list(TASKS)


def make_task(name: str, **options: object) -> FrequencyTask | AddingTask:
    """Build a task by name, e.g. ``make_task("frequency", sampling="async")``."""
    if name not in TASKS:
        raise UsageError(f"unknown task {name!r}; choose one of {', '.join(TASKS)}")
    return TASKS[name](**options)


def fixed_test_set(task: FrequencyTask | AddingTask, num_examples: int, seed: int, batch_size: int = 500) -> list[SequenceBatch]:
    """A deterministic test set: the same ``seed`` always gives the same batches."""
    generator = torch.Generator().manual_seed(seed)
    sizes = [batch_size] * (num_examples // batch_size) + ([num_examples % batch_size] if num_examples % batch_size else [])
    return [task.batch(size, generator) for size in sizes]
