"""The derived tables of session 12's README, from the files beside this script.

    python results/optim/session12/tables.py

1. The second-order Adam-input optimizer on the paper's five MNIST rows, 20 and 100 test problems:
   every optimizer's final loss and the paired difference LSTM − best baseline (95% CI), next to
   session 11's two-stage optimizer on the same problems.
2. On CIFAR-10 conv nets (never trained on): LSTM-only scores paired with the committed CIFAR baselines.
3. A second seed of the recipe (``seed13-*.json``, LSTM only) paired with the baselines of (1): the
   same test problems.
4. The validation curve of every meta-training run of the session (``validation/<run>.jsonl``).
"""

from __future__ import annotations

import json
from pathlib import Path

from metashot.optim.evaluate import paired_difference

HERE = Path(__file__).resolve().parent
SESSION11 = HERE.parent / "session11"
CIFAR = HERE.parent / "cifar10"
ROWS = (("sigmoid MLP (100)", "mnist-mlp-100"), ("sigmoid MLP (200)", "mnist-mlp-200"),
        ("40 hidden units (100)", "mnist-mlp-wide-100"), ("two hidden layers (100)", "mnist-mlp-deep-100"),
        ("ReLU (100)", "mnist-mlp-relu-100"))
BASELINES = ("adam", "rmsprop", "nag", "sgd")


def _optimizers(path: Path) -> dict:
    return json.loads(path.read_text())["optimizers"]


def mnist(suffix: str) -> None:
    print(f"| task (step) | this LSTM | {' | '.join(BASELINES)} | LSTM − best baseline (paired) | session 11's LSTM |")
    print("|---|---|---|---|---|---|---|---|")
    for label, row in ROWS:
        ours = _optimizers(HERE / f"adam-so-{row}{suffix}.json")
        old = _optimizers(SESSION11 / f"mixed-adam-{row}{suffix}.json")["lstm"]
        lstm = ours["lstm"]["final_losses"]
        best = min(BASELINES, key=lambda name: ours[name]["final_loss"])
        mean, half = paired_difference(lstm, ours[best]["final_losses"])
        wins = sum(a < b for a, b in zip(lstm, ours[best]["final_losses"]))
        cells = " | ".join(f"{ours[name]['final_loss']:.3f}" for name in BASELINES)
        print(f"| {label} | {ours['lstm']['final_loss']:.3f} | {cells} | {best}: {mean:+.3f} ± {half:.3f} "
              f"({wins}/{len(lstm)}) | {old['final_loss']:.3f} |")


def cifar() -> None:
    print("| task | baseline | baseline loss | this LSTM | LSTM − baseline (paired, 95% CI) | LSTM lower on |")
    print("|---|---|---|---|---|---|")
    for task, baselines in (("cifar10-conv", "compare-separate-cifar10-conv-20runs"),
                            ("cifar10-conv-5label", "compare-separate-cifar10-conv-5label-20runs")):
        ours = _optimizers(HERE / f"adam-so-{task}-lstm-only.json")["lstm"]
        for name, entry in _optimizers(CIFAR / f"{baselines}.json").items():
            mean, half = paired_difference(ours["final_losses"], entry["final_losses"])
            wins = sum(a < b for a, b in zip(ours["final_losses"], entry["final_losses"]))
            label = "CIFAR-trained LSTM" if name == "lstm" else name
            print(f"| {task} | {label} | {entry['final_loss']:.3f} | {ours['final_loss']:.3f} | "
                  f"{mean:+.3f} ± {half:.3f} | {wins}/{len(ours['final_losses'])} |")


def second_seed() -> None:
    print("| task (step) | test problems | seed 13 | seed 11 (committed) | best baseline | seed 13 − best baseline (paired) |")
    print("|---|---|---|---|---|---|")
    for label, row in ROWS:
        for suffix in ("", "-runs100"):
            path = HERE / f"seed13-{row}{suffix}.json"
            if not path.exists():
                continue
            ours = _optimizers(path)["lstm"]
            committed = _optimizers(HERE / f"adam-so-{row}{suffix}.json")
            best = min(BASELINES, key=lambda name: committed[name]["final_loss"])
            mean, half = paired_difference(ours["final_losses"], committed[best]["final_losses"])
            wins = sum(a < b for a, b in zip(ours["final_losses"], committed[best]["final_losses"]))
            print(f"| {label} | {len(ours['final_losses'])} | {ours['final_loss']:.3f} | "
                  f"{committed['lstm']['final_loss']:.3f} | {best} {committed[best]['final_loss']:.3f} | "
                  f"{mean:+.3f} ± {half:.3f} ({wins}/{len(ours['final_losses'])}) |")


def validation() -> None:
    print("| run | validations (epoch: loss) | best |")
    print("|---|---|---|")
    for path in sorted((HERE / "validation").glob("*.jsonl")):
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        best = min(rows, key=lambda r: r["val_loss"])
        curve = ", ".join(f"{r['epoch']}: {r['val_loss']:.4f}" for r in rows)
        print(f"| {path.stem} | {curve} | {best['val_loss']:.4f} (epoch {best['epoch']}) |")


if __name__ == "__main__":
    print("20 test problems\n")
    mnist("")
    print("\n100 test problems\n")
    mnist("-runs100")
    print()
    cifar()
    print()
    second_seed()
    print()
    validation()
