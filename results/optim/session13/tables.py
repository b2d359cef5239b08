"""The derived tables of session 13's optim README, from the files beside this script.

    python results/optim/session13/tables.py

1. Validation curves (8 problems, every 25 epochs) of the third seed of the committed recipe, without and
   with meta-gradient clipping (``seed12-metrics.jsonl``, ``seed12-clip1-metrics.jsonl``), next to the
   committed seed 11 and session 12's seed 13.
2. The clipped seed-12 optimizer's test scores (``seed12-clip1-*.json``, LSTM only) paired with the
   baselines of session 12 (the same test problems).
"""

from __future__ import annotations

import json
from pathlib import Path

from metashot.optim.evaluate import paired_difference

HERE = Path(__file__).resolve().parent
SESSION12 = HERE.parent / "session12"
COMMITTED = HERE.parents[2] / "checkpoints" / "l2l-mnist-mlp-mixed-adam-second-order"
ROWS = (("sigmoid MLP (100)", "mnist-mlp-100"), ("sigmoid MLP (200)", "mnist-mlp-200"),
        ("40 hidden units (100)", "mnist-mlp-wide-100"), ("two hidden layers (100)", "mnist-mlp-deep-100"),
        ("ReLU (100)", "mnist-mlp-relu-100"))
BASELINES = ("adam", "rmsprop", "nag", "sgd")


def _validations(path: Path) -> list[dict]:
    return [r for r in (json.loads(line) for line in path.read_text().splitlines()) if "val_loss" in r]


def validation() -> None:
    print("| run | validation loss at epochs 25, 50, ... | best | worst unroll loss after epoch 100 |")
    print("|---|---|---|---|")
    runs = (("seed 11 (committed)", COMMITTED / "metrics.jsonl"),
            ("seed 13 (session 12)", SESSION12 / "validation" / "so-scratch-seed13.jsonl"),
            ("seed 12", HERE / "seed12-metrics.jsonl"),
            ("seed 12, `--grad-clip 1`", HERE / "seed12-clip1-metrics.jsonl"))
    for label, path in runs:
        rows = _validations(path)
        best = min(rows, key=lambda r: r["val_loss"])
        curve = ", ".join(f"{r['val_loss']:.3f}" for r in rows)
        unrolls = [json.loads(line) for line in path.read_text().splitlines()]
        late = [r["loss_last"] for r in unrolls if "loss_last" in r and r.get("epoch", 0) > 100]
        worst = f"{max(late):.2f}" if late else "n/a (validation only)"
        print(f"| {label} | {curve} | {best['val_loss']:.4f} (epoch {best['epoch']}) | {worst} |")


def third_seed() -> None:
    print("| task (step) | test problems | seed 12, clipped | seed 13 | seed 11 (committed) | best baseline | "
          "seed 12 clipped − best baseline (paired) |")
    print("|---|---|---|---|---|---|---|")
    for label, row in ROWS:
        for suffix in ("", "-runs100"):
            path = HERE / f"seed12-clip1-{row}{suffix}.json"
            if not path.exists():
                continue
            ours = json.loads(path.read_text())["optimizers"]["lstm"]
            committed = json.loads((SESSION12 / f"adam-so-{row}{suffix}.json").read_text())["optimizers"]
            seed13_path = SESSION12 / f"seed13-{row}{suffix}.json"
            seed13 = (f"{json.loads(seed13_path.read_text())['optimizers']['lstm']['final_loss']:.3f}"
                      if seed13_path.exists() else "")
            best = min(BASELINES, key=lambda name: committed[name]["final_loss"])
            mean, half = paired_difference(ours["final_losses"], committed[best]["final_losses"])
            wins = sum(a < b for a, b in zip(ours["final_losses"], committed[best]["final_losses"]))
            print(f"| {label} | {len(ours['final_losses'])} | {ours['final_loss']:.3f} | {seed13} | "
                  f"{committed['lstm']['final_loss']:.3f} | {best} {committed[best]['final_loss']:.3f} | "
                  f"{mean:+.3f} ± {half:.3f} ({wins}/{len(ours['final_losses'])}) |")


if __name__ == "__main__":
    validation()
    print()
    third_seed()
