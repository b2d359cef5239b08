"""Paper-style figures: loss vs step with confidence bands (paper, Figures 2-5). matplotlib only here."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

COLORS = {"lstm": "tab:red", "adam": "tab:blue", "rmsprop": "tab:green", "nag": "tab:orange", "sgd": "tab:purple"}
LABELS = {"lstm": "LSTM (learned)", "adam": "Adam", "rmsprop": "RMSprop", "nag": "NAG", "sgd": "SGD"}


def _draw(ax: Any, result: dict[str, Any], title: str | None = None) -> None:
    runs = max(int(result["runs"]), 1)
    # on a log axis a band reaching zero would stretch the axis down to nothing: clip the lower edges at
    # half the smallest mean loss drawn (the axis starts there, so a clipped band shows as running off it)
    means = [m for entry in result["optimizers"].values() for m in entry["curve"] if math.isfinite(m) and m > 0]
    floor = 0.5 * min(means) if means else 1e-12
    for name, entry in result["optimizers"].items():
        mean = entry["curve"]
        std = entry.get("curve_std", [0.0] * len(mean))
        steps = range(len(mean))
        half = [1.96 * s / math.sqrt(runs) if math.isfinite(s) else 0.0 for s in std]
        lower = [max(m - h, floor) for m, h in zip(mean, half)]
        upper = [m + h for m, h in zip(mean, half)]
        label = f"{LABELS.get(name, name)}" + ("" if name == "lstm" else f" (lr {entry['lr']:.2g})")
        color = COLORS.get(name)
        ax.plot(steps, mean, label=label, color=color, linewidth=1.6 if name == "lstm" else 1.0)
        ax.fill_between(steps, lower, upper, color=color, alpha=0.2, linewidth=0)
    ax.set_yscale("log")
    ax.set_ylim(bottom=floor)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title or f"{result['task']} ({result['runs']} runs, 95% CI)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)


def plot_comparison(result: dict[str, Any], path: str | os.PathLike[str], title: str | None = None) -> None:
    """Draw one ``compare`` result (mean loss per step, 95% confidence band of the mean) to ``path``."""
    plot_panels([result], path, titles=[title] if title else None)


def plot_panels(
    results: Sequence[dict[str, Any]], path: str | os.PathLike[str], titles: Sequence[str | None] | None = None
) -> None:
    """Several ``compare`` results side by side in one PNG (e.g. the paper's Figure 4 variants)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(4.5 * len(results), 3.6), squeeze=False)
    for i, (ax, result) in enumerate(zip(axes[0], results)):
        _draw(ax, result, titles[i] if titles else None)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
