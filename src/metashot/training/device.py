"""``--device cpu|cuda|cuda:N|auto``."""

from __future__ import annotations

import torch

from metashot.errors import UsageError


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """Turn a ``--device`` value into a ``torch.device``; ``auto`` picks CUDA when present.

    Asking for CUDA on a machine without it is a usage error with the fix in the message.
    """
    if isinstance(name, torch.device):
        return name
    name = (name or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"unknown device {name!r}; use cpu, cuda, cuda:N or auto") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
    if device.type not in ("cpu", "cuda"):
        raise UsageError(f"unsupported device {name!r}; use cpu, cuda, cuda:N or auto")
    return device
