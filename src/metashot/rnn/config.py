"""Typed configuration of Phased LSTM runs, with the paper's settings as named presets.

Paper (Neil et al. 2016, section 3.1): 110 hidden units, batch 32, Adam 1e-3, 70 epochs of
10,000 examples, tau ~ exp(U(1, 3)) ms for the frequency task, r_on = 0.05, leak 1e-3.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from metashot.errors import UsageError
from metashot.rnn.sequence_models import MODELS
from metashot.rnn.tasks import SAMPLING_ALIASES, TASKS, AddingTask, FrequencyTask


@dataclass(frozen=True, kw_only=True)
class TaskConfig:
    """Which synthetic task to train on."""

    name: str = field(default="frequency", metadata={"help": "frequency or adding"})
    sampling: str = field(default="async", metadata={"help": "frequency task: standard, high_resolution or async"})
    min_length: int = field(default=490, metadata={"help": "adding task: shortest sequence"})
    max_length: int = field(default=510, metadata={"help": "adding task: longest sequence"})

    def __post_init__(self) -> None:
        if self.name not in TASKS:
            raise UsageError(f"unknown task {self.name!r}; choose one of {', '.join(TASKS)}")
        if self.sampling not in SAMPLING_ALIASES:
            raise UsageError(f"unknown sampling {self.sampling!r}; choose standard, high_resolution or async")
        object.__setattr__(self, "sampling", SAMPLING_ALIASES[self.sampling])

    def build(self) -> FrequencyTask | AddingTask:
        if self.name == "frequency":
            return FrequencyTask(sampling=self.sampling)
        return AddingTask(min_length=self.min_length, max_length=self.max_length)


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """The recurrent model and its size."""

    model: str = field(default="plstm", metadata={"help": "plstm, lstm or bnlstm"})
    hidden_size: int = field(default=110, metadata={"help": "hidden units (paper: 110)"})
    num_layers: int = field(default=1, metadata={"help": "stacked layers"})
    r_on: float = field(default=0.05, metadata={"help": "initial open ratio"})
    learn_r_on: bool = field(default=True, metadata={"help": "Phased LSTM: learn r_on (False keeps it at r_on)"})
    leak: float = field(default=1e-3, metadata={"help": "alpha, gate slope while closed (training only)"})
    period_init_range: tuple[float, float] = field(
        default=(math.e, math.e**3), metadata={"help": "tau ~ log-uniform in this range (paper: exp(1)..exp(3))"}
    )

    time_input_scale: float = field(
        default=1.0, metadata={"help": "LSTM / BN-LSTM baselines: the timestamp input is times * this (paper: 1, raw ms)"}
    )

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise UsageError(f"unknown model {self.model!r}; choose one of {', '.join(MODELS)}")
        if self.hidden_size < 1 or self.num_layers < 1:
            raise UsageError("hidden_size and num_layers must be positive")
        if not isinstance(self.learn_r_on, bool):
            raise UsageError(f"learn_r_on must be true or false, got {self.learn_r_on!r} "
                             "(on the command line: --fixed-r-on)")


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """A whole training run."""

    task: TaskConfig = field(default_factory=TaskConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    batch_size: int = field(default=32, metadata={"help": "sequences per step (paper: 32)"})
    epochs: int = field(default=70, metadata={"help": "epochs (paper: 70)"})
    epoch_size: int = field(default=10_000, metadata={"help": "examples per epoch (paper: 10,000)"})
    lr: float = field(default=1e-3, metadata={"help": "Adam learning rate (paper: 1e-3)"})
    grad_clip: float = field(default=0.0, metadata={"help": "clip the gradient norm (0: off)"})
    eval_examples: int = field(default=1000, metadata={"help": "test examples evaluated after every epoch"})
    seed: int = field(default=0, metadata={"help": "seed of the weights and the training stream"})

    def __post_init__(self) -> None:
        for name in ("batch_size", "epochs", "epoch_size", "eval_examples"):
            if getattr(self, name) < 1:
                raise UsageError(f"{name} must be positive, got {getattr(self, name)}")
        if self.lr <= 0:
            raise UsageError(f"lr must be positive, got {self.lr}")

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.epoch_size / self.batch_size)


PRESETS: dict[str, TrainConfig] = {
    # The paper's budget: 70 epochs x 10,000 examples (GPU-sized).
    "frequency-paper": TrainConfig(),
    # A reduced budget that a few CPU minutes can afford (used for the committed checkpoints).
    "frequency-cpu": TrainConfig(epochs=20, epoch_size=1600, eval_examples=1000),
    "adding-paper": TrainConfig(
        task=TaskConfig(name="adding"), model=ModelConfig(period_init_range=(math.e, math.e**6)), epochs=20
    ),
}


def list_presets() -> list[str]:
    return list(PRESETS)


def preset(name: str, **overrides: object) -> TrainConfig:
    if name not in PRESETS:
        raise UsageError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return replace(PRESETS[name], **overrides)  # type: ignore[arg-type]
