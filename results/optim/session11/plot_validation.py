"""Validation curves of session 11's meta-training runs (adam inputs): first- vs second-order meta-gradients.

    python results/optim/session11/plot_validation.py   # writes results/optim/session11/validation.png

Reads ``validation/<run>.jsonl`` (the ``val_loss`` lines of each run's ``metrics.jsonl``) and
``validation/<run>.config.json``. The y-axis is the mean loss over the horizon on the run's fixed
validation problems (8 sigmoid MLPs for ``mnist-mlp``, 8 mixed-activation MLPs for ``mnist-mlp-mixed``:
the two panels' scales are not comparable).
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = Path(__file__).resolve().parent

# run -> (panel, label); panels: validation task
RUNS = {
    "l2l-mnist-mlp-adam": ("mnist-mlp", "from scratch, first order, unroll 20, lr 1e-3"),
    "l2l-mnist-mlp-adam-stage2": ("mnist-mlp", "from its epoch 100, first order, unroll 100, lr 5e-4"),
    "l2l-mnist-mlp-mixed-adam-ft": ("mnist-mlp", "from mixed epoch 375, first order, unroll 20, lr 2e-4"),
    "l2l-mnist-mlp-mixed-adam-ft2": ("mnist-mlp", "from mixed epoch 375, SECOND order, unroll 20, lr 2e-4"),
    "l2l-mnist-mlp-mixed-adam": ("mnist-mlp-mixed", "from scratch, first order, seed 1"),
    "l2l-mnist-mlp-mixed-adam-s2": ("mnist-mlp-mixed", "from scratch, first order, seed 2"),
    "l2l-mnist-mlp-mixed-adam-so": ("mnist-mlp-mixed", "from seed 1's epoch 375, SECOND order, lr 2e-4"),
}
OFFSET = {"l2l-mnist-mlp-adam-stage2": 100, "l2l-mnist-mlp-mixed-adam-ft": 375, "l2l-mnist-mlp-mixed-adam-ft2": 375,
          "l2l-mnist-mlp-mixed-adam-so": 375}  # epochs of the run it started from


def main() -> None:
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, panel in zip(axes, ("mnist-mlp", "mnist-mlp-mixed")):
        for run, (where, label) in RUNS.items():
            if where != panel:
                continue
            rows = [json.loads(line) for line in (HERE / "validation" / f"{run}.jsonl").read_text().splitlines()]
            epochs = [r["epoch"] + OFFSET.get(run, 0) for r in rows]
            ax.plot(epochs, [r["val_loss"] for r in rows], marker=".", label=label,
                    linestyle="-" if "SECOND" in label else "--")
        ax.set_title(f"validation on {panel} (mean loss over 100 steps)")
        ax.set_xlabel("meta-training epoch (counted from the first run of the chain)")
        ax.set_ylabel("validation loss")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.suptitle("Adam-normalised inputs: first-order meta-gradients drifted up on the sigmoid MLP; "
                 "the second-order fine-tune improved for ~150 epochs (one run each)")
    fig.tight_layout()
    fig.savefig(HERE / "validation.png", dpi=110)


if __name__ == "__main__":
    main()
