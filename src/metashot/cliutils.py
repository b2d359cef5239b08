"""Small helpers shared by every system's ``cli.py``: common flags and output."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from metashot.errors import UsageError


def add_data_dir(parser: argparse.ArgumentParser) -> None:
    """``--data-dir``: else $METASHOT_DATA, else ~/.cache/metashot."""
    parser.add_argument(
        "--data-dir",
        default=None,
        help="dataset folder (default: $METASHOT_DATA, else ~/.cache/metashot)",
    )


def add_device(parser: argparse.ArgumentParser) -> None:
    """``--device cpu|cuda|auto``."""
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: auto)")


def add_seed(parser: argparse.ArgumentParser, default: int = 0) -> None:
    parser.add_argument("--seed", type=int, default=default, help=f"random seed (default: {default})")


def add_json(parser: argparse.ArgumentParser) -> None:
    """``--json``: print one JSON object on stdout instead of a human-readable summary."""
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def add_training(parser: argparse.ArgumentParser) -> None:
    """Flags every trainer shares: --out, --resume, --max-steps, --max-minutes, --device, --seed."""
    parser.add_argument("--out", required=True, help="run folder: checkpoint, config.json, metrics.jsonl")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this many steps (smoke tests)")
    parser.add_argument(
        "--max-minutes", type=float, default=None, help="stop (and checkpoint) after this much wall time"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_device(parser)
    add_seed(parser)
    add_data_dir(parser)


def positive_int(text: str) -> int:
    """argparse type: an integer > 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _clean(value: Any) -> Any:
    """Make ``value`` strict-JSON: NaN/inf become None, tuples lists, numpy/torch scalars floats."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def print_json(obj: dict[str, Any]) -> None:
    """Print exactly one JSON object on stdout."""
    sys.stdout.write(json.dumps(_clean(obj), sort_keys=False) + "\n")
    sys.stdout.flush()


def require(condition: bool, message: str) -> None:
    """Raise UsageError(message) unless ``condition``."""
    if not condition:
        raise UsageError(message)
