"""Markdown table of the CIFAR-10 comparisons in this folder, and ``figure6.png`` (the paper's Figure 6
layout: CIFAR-10, CIFAR-5, CIFAR-2 panels): ``python results/optim/cifar10/summarize.py``.

Every ``compare-*.json`` here ran the same test seeds (``--seed 0 --runs 5``), so the LSTM-only
runs (``compare-{shared-lstm,separate,heldout}-<task>.json``) are paired with the tuned baselines of
``compare-baselines-<task>.json`` (whose own "lstm" entry is the superseded 32-epoch shared-LSTM
optimizer, see the README); wins are counted on those pairs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

HERE = Path(__file__).resolve().parent
TASKS = ("cifar10-conv", "cifar10-conv-5label", "cifar10-conv-2label")
LSTMS = (("shared-lstm", "LSTM (one shared)"), ("separate", "LSTM (conv + fc)"), ("heldout", "LSTM-sub (conv + fc)"))
BASELINES = ("adam", "rmsprop", "nag", "sgd")


def _load(tag: str, task: str) -> dict | None:
    path = HERE / f"compare-{tag}-{task}.json"
    return json.loads(path.read_text()) if path.is_file() else None


STYLE = {  # name -> (label, color, linestyle)
    "separate": ("LSTM, conv + fc (paper's)", "tab:red", "-"),
    "shared-lstm": ("LSTM, one shared", "tab:brown", "--"),
    "heldout": ("LSTM-sub (held-out labels)", "tab:pink", "-."),
    "adam": ("Adam", "tab:blue", "-"),
    "rmsprop": ("RMSprop", "tab:green", "-"),
    "nag": ("NAG", "tab:orange", "-"),
    "sgd": ("SGD", "tab:purple", "-"),
}


def figure(path: Path) -> None:
    """Three panels (mean loss per step, 95% band of the mean); LSTMs beside the tuned baselines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(TASKS), figsize=(5 * len(TASKS), 4), squeeze=False)
    for ax, task in zip(axes[0], TASKS):
        base = _load("baselines", task)
        if base is None:
            continue
        entries = {}
        for tag, _ in LSTMS:
            result = _load(tag, task)
            if result is not None and "lstm" in result["optimizers"]:
                entries[tag] = result["optimizers"]["lstm"]
        entries.update({n: base["optimizers"][n] for n in BASELINES if n in base["optimizers"]})
        for name, entry in entries.items():
            label, color, style = STYLE[name]
            if name in BASELINES:
                label += f" (lr {entry['lr']:.2g})"
            mean, std = entry["curve"], entry["curve_std"]
            half = [1.96 * v / math.sqrt(base["runs"]) for v in std]
            ax.plot(range(len(mean)), mean, style, color=color, label=label, linewidth=1.8 if name in dict(LSTMS) else 1.1)
            ax.fill_between(range(len(mean)), [m - h for m, h in zip(mean, half)],
                            [m + h for m, h in zip(mean, half)], color=color, alpha=0.12, linewidth=0)
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel("minibatch loss (test images)")
        ax.set_title(f"{task} ({base['runs']} runs, 95% CI)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    header = ["task", "optimizer", "loss at step 100", "mean loss over steps 0-100", "loss at step 25", "lr",
              "LSTM runs below the best baseline"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for task in TASKS:
        base = _load("baselines", task)
        if base is None:
            continue
        entries = {name: base["optimizers"][name] for name in BASELINES if name in base["optimizers"]}
        best_name = min(entries, key=lambda n: entries[n]["final_loss"])
        best = entries[best_name]["final_losses"]
        rows = []
        for tag, label in LSTMS:
            result = _load(tag, task)
            if result is None or "lstm" not in result["optimizers"]:
                continue
            lstm = result["optimizers"]["lstm"]
            wins = sum(a < b for a, b in zip(lstm["final_losses"], best))
            rows.append((label, lstm, f"{wins}/{len(best)} (vs {best_name})"))
        rows += [(name, entry, "") for name, entry in entries.items()]
        for label, entry, wins in rows:
            curve = entry["curve"]
            lr = "" if label.startswith("LSTM") else f"{entry['lr']:.3g}"
            print(f"| {task} | {label} | {entry['final_loss']:.4f} ± {entry['final_loss_ci95']:.3f} | "
                  f"{sum(curve) / len(curve):.4f} | {curve[25]:.4f} | {lr} | {wins} |")


if __name__ == "__main__":
    main()
    figure(HERE / "figure6.png")
