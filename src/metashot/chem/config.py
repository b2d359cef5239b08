"""Typed configuration of the chemical VAE: model sizes, training settings, presets.

Defaults are the paper's ZINC model (Gómez-Bombarelli et al., https://arxiv.org/abs/1610.02415,
supplementary table of hyper-parameters and the reference code ``chemical_vae``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from metashot.errors import UsageError

__all__ = ["PRESETS", "TrainConfig", "VAEConfig", "list_presets"]


@dataclass(frozen=True, kw_only=True)
class VAEConfig:
    """Sizes of :class:`~metashot.chem.vae.SmilesVAE` (paper ZINC model by default)."""

    max_length: int = field(default=120, metadata={"help": "tokens per molecule (120 for ZINC)"})
    latent_dim: int = field(default=196, metadata={"help": "latent dimensions (196 ZINC, 156 QM9)"})
    conv_channels: tuple[int, ...] = field(default=(9, 9, 10), metadata={"help": "encoder conv filters"})
    conv_kernels: tuple[int, ...] = field(default=(9, 9, 11), metadata={"help": "encoder conv kernel sizes"})
    encoder_hidden: int = field(default=196, metadata={"help": "dense layer after the convolutions"})
    decoder_hidden: int = field(default=196, metadata={"help": "dense layer from z, repeated over time"})
    gru_hidden: int = field(default=488, metadata={"help": "GRU width"})
    gru_layers: int = field(default=3, metadata={"help": "GRU layers"})
    token_embedding: int = field(default=32, metadata={"help": "embedding of the teacher-forced previous token"})
    property_hidden: int = field(default=67, metadata={"help": "property MLP width"})
    property_layers: int = field(default=3, metadata={"help": "property MLP hidden layers"})
    num_properties: int = field(default=3, metadata={"help": "logP, QED, SAS"})
    encoder_norm: str = field(
        default="batch",
        metadata={"help": "normalisation after each encoder layer: batch (paper), layer (per molecule: no batch "
                          "statistics, so length-bucketed batches train and evaluate alike) or none"},
    )

    def __post_init__(self) -> None:
        if self.encoder_norm not in ("batch", "layer", "none"):
            raise UsageError(f"--encoder-norm (encoder_norm) must be batch, layer or none, got {self.encoder_norm!r}")
        if len(self.conv_channels) != len(self.conv_kernels):
            raise UsageError("conv_channels and conv_kernels must have the same length")
        if self.max_length - sum(k - 1 for k in self.conv_kernels) < 1:
            raise UsageError(f"max_length {self.max_length} is too short for conv kernels {self.conv_kernels}")
        for name in ("latent_dim", "encoder_hidden", "decoder_hidden", "gru_hidden", "gru_layers", "token_embedding"):
            if getattr(self, name) < 1:
                raise UsageError(f"{name} must be >= 1, got {getattr(self, name)}")


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Training settings (paper: Adam ~4e-4, batch ~126-182, sigmoid KL annealing)."""

    model: VAEConfig = field(default_factory=VAEConfig)
    dataset: str = field(default="zinc250k", metadata={"help": "zinc250k or moses"})
    tokenizer: str = field(default="char", metadata={"help": "char (paper), regex or selfies"})
    max_molecules: int | None = field(default=None, metadata={"help": "use only the first N training molecules"})
    test_fraction: float = field(default=0.1, metadata={"help": "last fraction of the file held out as test"})
    batch_size: int = field(default=256, metadata={"help": "molecules per step"})
    lr: float = field(default=5e-4, metadata={"help": "Adam learning rate"})
    lr_decay_start: float | None = field(
        default=None,
        metadata={"help": "epoch where a cosine decay of the learning rate starts, reaching lr * lr_final at "
                          "`epochs` (None = constant, the paper)"},
    )
    lr_final: float = field(default=0.05, metadata={"help": "final learning rate as a fraction of lr (cosine decay)"})
    lr_schedule: str = field(
        default="epoch",
        metadata={"help": "epoch: the cosine decay runs from epoch lr_decay_start to `epochs`; budget: from "
                          "fraction lr_decay_start of --max-minutes to its end (the rate reaches lr * lr_final "
                          "when the time budget does, however many epochs fit)"},
    )
    grad_clip: float = field(default=5.0, metadata={"help": "gradient norm clip (0 = off)"})
    epochs: float = field(default=120.0, metadata={"help": "stop after this many epochs"})
    kl_schedule: str = field(
        default="epoch",
        metadata={"help": "epoch: sigmoid over epochs (paper); budget: over the fraction of --max-minutes spent"},
    )
    kl_midpoint: float = field(
        default=22.0, metadata={"help": "where the KL weight is half its maximum (epoch, or budget fraction)"}
    )
    kl_slope: float = field(default=1.0, metadata={"help": "slope of the sigmoid KL schedule (per epoch / per budget)"})
    # The reference code averages the KL over the 196 latent dims and the cross-entropy over the 120
    # positions; in our per-molecule ELBO / max_length that is a final weight of 120 / 196 = 0.612.
    kl_max: float = field(default=0.612, metadata={"help": "final KL weight (0.612 = reference code scaling)"})
    property_weight: float = field(default=0.5, metadata={"help": "weight of the property loss"})
    word_dropout: float = field(
        default=0.0,
        metadata={"help": "probability of hiding each previous token from the decoder in training (Bowman et al. "
                          "2016; not in the paper): the decoder must use the latent"},
    )
    trim_padding: bool = field(
        default=False,
        metadata={"help": "decode each batch only up to its longest molecule + 1 (the paper decodes all 120)"},
    )
    bucket_by_length: bool = field(
        default=False,
        metadata={"help": "batch molecules of similar length together (with trim_padding: ~2x faster decoding)"},
    )
    train_only: str = field(
        default="all",
        metadata={"help": "all: train every weight (paper); encoder: train the encoder and the property head with the "
                          "decoder frozen (with --init-from: closes the encoder's amortisation gap; the decoder, and so "
                          "every prior sample's decoding, is unchanged)"},
    )
    precision: str = field(default="bf16", metadata={"help": "bf16 or fp32 autocast on CUDA (CPU: fp32)"})
    eval_every: int = field(default=500, metadata={"help": "steps between held-out evaluations"})
    checkpoint_every: int = field(default=2000, metadata={"help": "steps between checkpoints"})
    eval_molecules: int = field(default=1000, metadata={"help": "held-out molecules per evaluation"})
    label: str = field(default="paper", metadata={"help": "free label stored with the run (e.g. reduced)"})

    def __post_init__(self) -> None:
        if self.dataset not in ("zinc250k", "moses"):
            raise UsageError(f"unknown dataset {self.dataset!r}; choose zinc250k or moses")
        if self.tokenizer not in ("char", "regex", "selfies"):
            raise UsageError(f"unknown tokenizer {self.tokenizer!r}; choose char, regex or selfies")
        if not 0.0 <= self.word_dropout < 1.0:
            raise UsageError(f"word_dropout must be in [0, 1), got {self.word_dropout}")
        if not 0.0 < self.test_fraction < 1.0:
            raise UsageError(f"test_fraction must be in (0, 1), got {self.test_fraction}")
        if not 0.0 < self.lr_final <= 1.0:
            raise UsageError(f"--lr-final (lr_final) must be in (0, 1], got {self.lr_final}")
        if self.lr_decay_start is not None and not 0.0 <= self.lr_decay_start < self.epochs:
            raise UsageError(f"--lr-decay-start (lr_decay_start) must be in [0, --epochs={self.epochs}), got "
                             f"{self.lr_decay_start}; raise --epochs or start the decay earlier")
        if self.batch_size < 1 or self.lr <= 0:
            raise UsageError("batch_size must be >= 1 and lr > 0")
        if self.lr_schedule not in ("epoch", "budget"):
            raise UsageError(f"lr_schedule must be epoch or budget, got {self.lr_schedule!r}")
        if self.lr_schedule == "budget" and self.lr_decay_start is not None and not 0.0 <= self.lr_decay_start < 1.0:
            raise UsageError(f"with --lr-schedule budget, --lr-decay-start is a fraction of --max-minutes in [0, 1), "
                             f"got {self.lr_decay_start}")
        if self.kl_schedule not in ("epoch", "budget"):
            raise UsageError(f"kl_schedule must be epoch or budget, got {self.kl_schedule!r}")
        if self.train_only not in ("all", "encoder"):
            raise UsageError(f"train_only must be all or encoder, got {self.train_only!r}")
        if self.precision not in ("bf16", "fp32"):
            raise UsageError(f"precision must be bf16 or fp32, got {self.precision!r}")
        if self.max_molecules is not None and self.max_molecules < 2:
            raise UsageError(f"--max-molecules must be >= 2, got {self.max_molecules}")


PRESETS: dict[str, TrainConfig] = {
    # The paper's ZINC model and schedule.
    "paper": TrainConfig(),
    # The GPU run (one H100, ~8 minutes): paper sizes; larger batch with a sqrt-scaled learning rate.
    # How many epochs fit is unknown in advance, so the KL weight follows the fraction of the time
    # budget (--max-minutes): ~0 for the first quarter (the decoder learns to use z), half at 40%,
    # ~kl_max from 65% on (the posterior is pulled onto the prior). Without --max-minutes the
    # schedule falls back to epochs (midpoint 4).
    "paper-fast": TrainConfig(batch_size=512, lr=7e-4, epochs=100.0, kl_schedule="budget", kl_midpoint=0.4,
                              kl_slope=16.0, eval_every=1000,
                              eval_molecules=500, checkpoint_every=5000, trim_padding=True,
                              bucket_by_length=True),
    # CPU fallback (2 shared cores): smaller GRU and latent, same data and max length. Labelled reduced.
    "reduced": TrainConfig(
        model=VAEConfig(latent_dim=64, encoder_hidden=128, decoder_hidden=128, gru_hidden=192, gru_layers=2,
                        property_hidden=64),
        batch_size=128, lr=1e-3, epochs=20.0, kl_midpoint=2.0, kl_slope=2.0, eval_every=250, trim_padding=True,
        bucket_by_length=True,
        checkpoint_every=250, eval_molecules=200, label="reduced",
    ),
    # Unit tests and smoke runs.
    "tiny": TrainConfig(
        model=VAEConfig(max_length=120, latent_dim=8, conv_channels=(4, 4), conv_kernels=(5, 5), encoder_hidden=16,
                        decoder_hidden=16, gru_hidden=32, gru_layers=1, token_embedding=8, property_hidden=8,
                        property_layers=1),
        batch_size=32, lr=3e-3, epochs=1000.0, kl_midpoint=2.0, eval_every=20, checkpoint_every=50,
        eval_molecules=32, precision="fp32", label="tiny",
    ),
}


def list_presets() -> list[str]:
    return list(PRESETS)


def preset(name: str, **overrides: object) -> TrainConfig:
    if name not in PRESETS:
        raise UsageError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return replace(PRESETS[name], **overrides)  # type: ignore[arg-type]
