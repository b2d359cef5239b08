"""Seeding, determinism switches, and RNG state capture/restore for exact resume."""

from __future__ import annotations

import json
import os
import random

import numpy as np
import torch
from torch import Tensor


def seed_everything(seed: int, *, deterministic: bool = False) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA); return a fresh ``torch.Generator`` seeded too.

    With ``deterministic=True`` also ask torch for deterministic kernels (slower on GPU).
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    return torch.Generator().manual_seed(seed)


def capture_rng_state(generators: dict[str, torch.Generator] | None = None) -> dict[str, Tensor]:
    """Every RNG state as uint8 tensors (safetensors-ready): torch CPU/CUDA, NumPy, Python, and
    the named ``generators`` (e.g. an episode sampler's)."""
    state: dict[str, Tensor] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            state[f"cuda.{i}"] = s
    state["numpy"] = _bytes_tensor(json.dumps(_numpy_state()))
    state["python"] = _bytes_tensor(json.dumps(_python_state()))
    for name, gen in (generators or {}).items():
        state[f"generator.{name}"] = gen.get_state()
    return state


def restore_rng_state(
    state: dict[str, Tensor], generators: dict[str, torch.Generator] | None = None
) -> None:
    """Inverse of :func:`capture_rng_state`."""
    torch.set_rng_state(state["torch"].to(torch.uint8).cpu())
    cuda_states = [state[k] for k in sorted(state) if k.startswith("cuda.")]
    if cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda_states[: torch.cuda.device_count()]])
    if "numpy" in state:
        kind, keys, pos, has_gauss, cached = json.loads(_tensor_bytes(state["numpy"]))
        np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    if "python" in state:
        version, internal, gauss = json.loads(_tensor_bytes(state["python"]))
        random.setstate((version, tuple(internal), gauss))
    for name, gen in (generators or {}).items():
        key = f"generator.{name}"
        if key in state:
            gen.set_state(state[key].to(torch.uint8).cpu())


def _numpy_state() -> list:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)]


def _python_state() -> list:
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


def _bytes_tensor(text: str) -> Tensor:
    return torch.frombuffer(bytearray(text.encode()), dtype=torch.uint8).clone()


def _tensor_bytes(t: Tensor) -> str:
    return bytes(t.to(torch.uint8).cpu().tolist()).decode()
