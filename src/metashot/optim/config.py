"""Typed, frozen configuration of the learned optimizer and its meta-training, with paper presets."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from metashot.errors import UsageError

PREPROCESS_CHOICES = ("log-sign", "none", "adam")
OUTPUT_ACTIVATIONS = ("linear", "tanh")
LOSS_WEIGHTINGS = ("uniform", "linear")  # see metashot.optim.meta.step_weight


@dataclass(frozen=True, kw_only=True)
class LSTMOptimizerConfig:
    """Architecture of the coordinate-wise LSTM optimizer (paper, Section 2.1 and Appendix A)."""

    hidden_size: int = field(default=20, metadata={"help": "hidden units per LSTM layer (paper: 20)"})
    num_layers: int = field(default=2, metadata={"help": "stacked LSTM layers (paper: 2)"})
    preprocess: str = field(
        default="log-sign",
        metadata={"help": "gradient preprocessing: log-sign (paper), none (raw gradient) or adam (beyond the paper: "
                          "Adam-normalised moments m/sqrt(v) and g/sqrt(v) as in RNNprop, Lv et al. 2017; "
                          "keeps per-coordinate moment state)"},
    )
    preprocess_p: float = field(default=10.0, metadata={"help": "p of the log-sign preprocessing (paper: 10)"})
    moment_decay: float = field(
        default=0.95, metadata={"help": "beta of both moving averages of the adam preprocessing (RNNprop: 0.95)"}
    )
    output_scale: float = field(default=0.1, metadata={"help": "update = output_scale * act(linear(h)) (paper: 0.1)"})
    output_activation: str = field(
        default="linear",
        metadata={"help": "act of the read-out: linear (paper) or tanh (bounded steps, as RNNprop)"},
    )
    chunk_size: int | None = field(
        default=4096, metadata={"help": "coordinates per block on CPU (cache-sized working set); None = all at once"}
    )
    accelerator_chunk_size: int | None = field(
        default=1 << 20,
        metadata={"help": "coordinates per block on a GPU: bounds the step's temporaries (~1.4 kB per coordinate) "
                          "on large models; None = all at once"},
    )
    lstm_groups: tuple[str, ...] = field(
        default=(),
        metadata={
            "help": "separate LSTMs per parameter-name pattern (fnmatch; a plain word is a prefix), e.g. "
            "('conv', 'fc'); a parameter uses the first match. Empty: one LSTM shared by all (the paper's default)"
        },
    )

    def __post_init__(self) -> None:
        if len(set(self.lstm_groups)) != len(self.lstm_groups) or any(not g for g in self.lstm_groups):
            raise UsageError(f"lstm_groups must be distinct non-empty patterns, got {self.lstm_groups}")
        if self.hidden_size < 1 or self.num_layers < 1:
            raise UsageError(f"hidden_size and num_layers must be >= 1, got {self.hidden_size}, {self.num_layers}")
        if self.preprocess not in PREPROCESS_CHOICES:
            raise UsageError(f"preprocess must be one of {PREPROCESS_CHOICES}, got {self.preprocess!r}")
        if self.preprocess_p <= 0:
            raise UsageError(f"preprocess_p must be > 0, got {self.preprocess_p}")
        if not 0.0 <= self.moment_decay < 1.0:
            raise UsageError(f"moment_decay must be in [0, 1), got {self.moment_decay}")
        if self.output_activation not in OUTPUT_ACTIVATIONS:
            raise UsageError(f"output_activation must be one of {OUTPUT_ACTIVATIONS}, got {self.output_activation!r}")
        for name in ("chunk_size", "accelerator_chunk_size"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise UsageError(f"{name} must be >= 1 or None, got {value}")

    @property
    def input_size(self) -> int:
        return 1 if self.preprocess == "none" else 2

    @property
    def uses_moments(self) -> bool:
        """Whether the optimizer keeps per-coordinate gradient moments (``preprocess="adam"``) next to ``(h, c)``."""
        return self.preprocess == "adam"


@dataclass(frozen=True, kw_only=True)
class MetaTrainConfig:
    """Meta-training by truncated BPTT (paper, Section 2 and 3; DeepMind's released ``train.py``)."""

    task: str = field(metadata={"help": "task family to meta-train on (see `metashot optim tasks`)"})
    net: LSTMOptimizerConfig = field(default_factory=LSTMOptimizerConfig)
    num_epochs: int = field(default=2000, metadata={"help": "optimizees (epochs) to meta-train on"})
    horizon: int = field(default=100, metadata={"help": "optimizee steps per epoch (paper: 100)"})
    unroll: int = field(default=20, metadata={"help": "truncation length of BPTT (paper: 20)"})
    meta_lr: float = field(default=1e-3, metadata={"help": "Adam learning rate of the optimizer's weights"})
    second_order: bool = field(
        default=False, metadata={"help": "keep d(grad)/d(phi) (the paper drops it: gradients detached)"}
    )
    fuse_parameters: bool = field(
        default=False, metadata={"help": "one LSTM call over all coordinates per step (faster on GPU)"}
    )
    grad_clip: float | None = field(default=None, metadata={"help": "clip the meta-gradient norm (None: off)"})
    loss_weighting: str = field(
        default="uniform",
        metadata={"help": "w_t of the meta-loss sum_t w_t f(theta_t): uniform (paper) or linear (2(t+1)/(horizon+1), "
                          "rewards late progress); validation uses the same weights"},
    )
    eval_every: int = field(default=50, metadata={"help": "epochs between validations (model selection)"})
    num_val: int = field(default=8, metadata={"help": "held-out validation optimizees"})
    checkpoint_every: int = field(default=50, metadata={"help": "epochs between checkpoints"})
    max_consecutive_failures: int = field(
        default=20, metadata={"help": "non-finite unrolls in a row before giving up"}
    )
    meta_batch: int = field(
        default=1,
        metadata={
            "help": "optimizees (own seeds) per meta-step, meta-gradient averaged over them; sharded over "
            "torchrun processes (global, not per process)"
        },
    )

    def __post_init__(self) -> None:
        if self.horizon < 1 or self.unroll < 1 or self.horizon % self.unroll:
            raise UsageError(f"horizon ({self.horizon}) must be a positive multiple of unroll ({self.unroll})")
        if self.num_epochs < 1 or self.eval_every < 1 or self.checkpoint_every < 1 or self.num_val < 1:
            raise UsageError("num_epochs, eval_every, checkpoint_every and num_val must be >= 1")
        if self.meta_batch < 1:
            raise UsageError(f"meta_batch must be >= 1, got {self.meta_batch}")
        if self.meta_lr <= 0:
            raise UsageError(f"meta_lr must be > 0, got {self.meta_lr}")
        if self.loss_weighting not in LOSS_WEIGHTINGS:
            raise UsageError(f"loss_weighting must be one of {LOSS_WEIGHTINGS}, got {self.loss_weighting!r}")

    @property
    def unrolls_per_epoch(self) -> int:
        return self.horizon // self.unroll


# Paper settings (Section 3): 2 x 20 LSTM, p = 10, output scale 0.1, Adam 1e-3, 100 steps unrolled 20.
PRESETS: dict[str, MetaTrainConfig] = {
    "quadratic": MetaTrainConfig(task="quadratic", num_epochs=1000, eval_every=50, num_val=16),
    "mnist-mlp": MetaTrainConfig(task="mnist-mlp", num_epochs=2000, eval_every=25, num_val=8),
    "mnist-mlp-mixed": MetaTrainConfig(task="mnist-mlp-mixed", num_epochs=2000, eval_every=25, num_val=8),
    "mnist-mlp-mixed-arch": MetaTrainConfig(task="mnist-mlp-mixed-arch", num_epochs=2000, eval_every=25, num_val=12),
}


def preset_for(task: str) -> MetaTrainConfig:
    """The preset for ``task`` (paper defaults for tasks without a preset of their own)."""
    return PRESETS.get(task, MetaTrainConfig(task=task))


def with_overrides(config: MetaTrainConfig, **overrides: object) -> MetaTrainConfig:
    """``config`` with the non-None ``overrides`` applied (net fields are accepted at top level)."""
    net_fields = {k: v for k, v in overrides.items() if v is not None and hasattr(config.net, k)}
    top = {k: v for k, v in overrides.items() if v is not None and not hasattr(config.net, k)}
    net = replace(config.net, **net_fields) if net_fields else config.net
    return replace(config, net=net, **top)
