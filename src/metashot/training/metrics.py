"""Metrics as JSON lines, progress bars, the NaN guard and the wall-time budget."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from torch import Tensor
from tqdm.auto import tqdm

from metashot.errors import NonFiniteLossError

T = TypeVar("T")


class MetricsLogger:
    """Append one JSON object per call to ``path`` (``metrics.jsonl``); TensorBoard too if installed
    and ``tensorboard=True``. Disabled loggers (non-zero ranks) do nothing."""

    def __init__(self, path: str | os.PathLike[str], *, enabled: bool = True, tensorboard: bool = False) -> None:
        self.path = Path(path)
        self.enabled = enabled
        self._writer = None
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if tensorboard:
                try:
                    from torch.utils.tensorboard import SummaryWriter

                    self._writer = SummaryWriter(str(self.path.parent / "tensorboard"))
                except ImportError:  # tensorboard is optional
                    self._writer = None

    def log(self, step: int, **metrics: Any) -> None:
        if not self.enabled:
            return
        record = {"step": int(step), "time": round(time.time(), 3)}
        for key, value in metrics.items():
            if isinstance(value, Tensor):
                value = value.detach().item()
            record[key] = value
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
        if self._writer is not None:
            for key, value in record.items():
                if key not in ("step", "time") and isinstance(value, (int, float)):
                    self._writer.add_scalar(key, value, step)

    def truncate_after(self, step: int) -> None:
        """Drop records after ``step`` (used on resume so the log matches the checkpoint)."""
        if not self.enabled or not self.path.exists():
            return
        lines = self.path.read_text(encoding="utf-8").splitlines()
        kept = [ln for ln in lines if ln.strip() and json.loads(ln).get("step", 0) <= step]
        self.path.write_text("".join(ln + "\n" for ln in kept), encoding="utf-8")


def read_metrics(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a ``metrics.jsonl`` file into a list of dicts."""
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def progress(
    iterable: Iterable[T] | None = None, *, total: int | None = None, desc: str = "", disable: bool = False, initial: int = 0
) -> Iterator[T] | tqdm:
    """A tqdm progress bar on stderr (hidden when ``disable``)."""
    return tqdm(iterable, total=total, desc=desc, disable=disable, initial=initial, file=sys.stderr, dynamic_ncols=True, leave=False)


def check_finite(step: int, losses: dict[str, Tensor | float], hint: str | None = None) -> None:
    """Raise :class:`NonFiniteLossError` naming the step and the bad components if any loss is NaN/inf."""
    values = {k: float(v.detach().item() if isinstance(v, Tensor) else v) for k, v in losses.items()}
    if not all(math.isfinite(v) for v in values.values()):
        raise NonFiniteLossError(step, values, hint)


class TimeBudget:
    """Wall-time budget for ``--max-minutes``; ``None`` means unlimited."""

    def __init__(self, minutes: float | None) -> None:
        self.seconds = None if minutes is None else minutes * 60.0
        self.start = time.monotonic()

    def expired(self) -> bool:
        return self.seconds is not None and time.monotonic() - self.start >= self.seconds

    def elapsed(self) -> float:
        return time.monotonic() - self.start
