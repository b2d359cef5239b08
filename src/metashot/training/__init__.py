"""Shared, model-agnostic training machinery: nothing here knows about any system.

- :mod:`~metashot.training.seeding`     seeds, determinism switches, RNG state capture/restore
- :mod:`~metashot.training.device`      ``--device cpu|cuda|auto``
- :mod:`~metashot.training.checkpoint`  safetensors + JSON checkpoints, atomic, exact resume
- :mod:`~metashot.training.metrics`     JSON-lines metrics, progress bars, NaN guard, time budget
- :mod:`~metashot.training.distributed` torchrun + DDP helpers (process group, sharding, per-rank RNG state)
"""

from metashot.training.checkpoint import Checkpoint, has_checkpoint, load_checkpoint, save_checkpoint
from metashot.training.device import resolve_device
from metashot.training.metrics import MetricsLogger, TimeBudget, check_finite, progress
from metashot.training.seeding import capture_rng_state, restore_rng_state, seed_everything

__all__ = [
    "Checkpoint",
    "MetricsLogger",
    "TimeBudget",
    "capture_rng_state",
    "check_finite",
    "has_checkpoint",
    "load_checkpoint",
    "progress",
    "resolve_device",
    "restore_rng_state",
    "save_checkpoint",
    "seed_everything",
]
