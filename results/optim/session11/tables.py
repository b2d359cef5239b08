"""The derived numbers of session 11's README, from the files beside this script.

    python results/optim/session11/tables.py

1. Meta-training speed of each run: epochs per minute between its first and last validation
   (``validation/<run>.jsonl``; wall time, two jobs sharing the 2-core machine).
2. The Adam-input optimizer on CIFAR against the committed CIFAR baselines: paired differences
   LSTM − baseline (``metashot.optim.evaluate.paired_difference``) over the same 20 test problems.
"""

from __future__ import annotations

import json
from pathlib import Path

from metashot.optim.evaluate import paired_difference

HERE = Path(__file__).resolve().parent
CIFAR = HERE.parent / "cifar10"


def speeds() -> None:
    print("| run | epochs/min | second order |")
    print("|---|---|---|")
    for path in sorted((HERE / "validation").glob("*.jsonl")):
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        if len(rows) < 2:
            continue
        config = json.loads(path.with_suffix(".config.json").read_text())
        minutes = (rows[-1]["time"] - rows[0]["time"]) / 60
        rate = (rows[-1]["epoch"] - rows[0]["epoch"]) / minutes
        print(f"| {path.stem} | {rate:.1f} | {config['second_order']} |")


def cifar() -> None:
    print("| task | baseline | baseline loss | LSTM − baseline (paired, 95% CI) | LSTM lower on |")
    print("|---|---|---|---|---|")
    for task, baselines in (("cifar10-conv", "compare-separate-cifar10-conv-20runs"),
                            ("cifar10-conv-5label", "compare-separate-cifar10-conv-5label-20runs")):
        ours = json.loads((HERE / f"mixed-adam-{task}-lstm-only.json").read_text())["optimizers"]["lstm"]["final_losses"]
        for name, entry in json.loads((CIFAR / f"{baselines}.json").read_text())["optimizers"].items():
            mean, half = paired_difference(ours, entry["final_losses"])
            wins = sum(a < b for a, b in zip(ours, entry["final_losses"]))
            label = "CIFAR-trained LSTM" if name == "lstm" else name
            print(f"| {task} | {label} | {entry['final_loss']:.3f} | {mean:+.3f} ± {half:.3f} | {wins}/{len(ours)} |")


if __name__ == "__main__":
    speeds()
    print()
    cifar()
