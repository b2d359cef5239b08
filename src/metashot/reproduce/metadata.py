"""Where and how a report was made: date, git commit, versions, device, seed, command."""

from __future__ import annotations

import os
import platform
import shlex
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


def git_commit(start: Path | None = None) -> str | None:
    """``<sha>`` (``<sha>+dirty`` with uncommitted changes to tracked files) of the checkout that
    holds the metashot sources, or None outside a git checkout / without git."""
    here = start or Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return sha.stdout.strip() + ("+dirty" if dirty.returncode == 0 and dirty.stdout.strip() else "")


def describe_device(name: str) -> str:
    """``--device`` value -> what it resolves to here, e.g. ``cuda:0 (NVIDIA H100 80GB HBM3)``."""
    import torch

    from metashot.training import resolve_device

    device = resolve_device(name)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return f"cpu ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"


def collect_metadata(
    *, device: str, seed: int, quick: bool, train: bool, systems: list[str], argv: list[str] | None = None
) -> dict[str, Any]:
    """The metadata block of every report (wall times are added by the caller as they come in)."""
    import torch

    from metashot import __version__

    args = sys.argv[1:] if argv is None else argv
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "command": "metashot " + shlex.join(args) if args else "metashot reproduce",
        "metashot_version": __version__,
        "git_commit": git_commit(),
        "python_version": platform.python_version(),
        "torch_version": torch.__version__,
        "platform": platform.platform(),
        "device": describe_device(device),
        "seed": seed,
        "quick": quick,
        "train": train,
        "systems": systems,
    }
