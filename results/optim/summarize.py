"""Print the markdown table of results/optim/compare-*.json (used to write README.md).

``python results/optim/summarize.py 'session11/*.json'`` for another set of files. The last column is
the paired comparison with the best baseline: the number of test problems on which the LSTM ends
lower, and the mean of the per-problem differences (LSTM − baseline) with its 95% confidence
interval (``metashot.optim.evaluate.paired_difference``; every optimizer runs the same problem seeds, so the pairs share
initialisation and minibatches and the paired interval is much narrower than the two means' CIs).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from metashot.optim.evaluate import paired_difference

HERE = Path(__file__).resolve().parent


def main() -> None:
    print("| result file | task | steps | runs | LSTM | Adam | RMSprop | NAG | SGD | LSTM lower than best baseline on |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for path in sorted(HERE.glob(sys.argv[1] if len(sys.argv) > 1 else "compare-*.json")):
        r = json.loads(path.read_text())
        opts = r["optimizers"]
        cells = []
        for name in ("lstm", "adam", "rmsprop", "nag", "sgd"):
            if name not in opts:
                cells.append("–")
                continue
            e = opts[name]
            lr = "" if name == "lstm" else f" (lr {e['lr']:.2g})"
            cells.append(f"{e['final_loss']:.3f} ± {e['final_loss_ci95']:.3f}{lr}")
        baselines = {k: v for k, v in opts.items() if k != "lstm"}
        best = min(baselines, key=lambda k: baselines[k]["final_loss"]) if baselines else None
        wins = "–"
        if best and "lstm" in opts:
            wins = f"{baselines[best]['lstm_wins']}/{r['runs']} runs ({best})"
            if "final_losses" in opts["lstm"] and "final_losses" in baselines[best]:
                diff, half = paired_difference(opts["lstm"]["final_losses"], baselines[best]["final_losses"])
                wins += f"; paired difference {diff:+.4f} ± {half:.4f}"
        print(f"| {path.name} | {r['task']} | {r['steps']} | {r['runs']} | " + " | ".join(cells) + f" | {wins} |")


if __name__ == "__main__":
    main()
