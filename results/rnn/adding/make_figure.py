"""Adding task: held-out MSE vs training step for Phased LSTM and LSTM at each sequence length.

Reads every ``results/rnn/adding/<run>/metrics.jsonl`` (+ its ``config.json``: the run's task and
model) and draws one panel per sequence length, like the paper's MSE-over-training figure.
Writes ``adding_mse.png`` and ``summary.json`` (steps to reach MSE 0.1 and 0.01, final numbers).

    .venv/bin/python results/rnn/adding/make_figure.py
"""

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

here = Path(__file__).resolve().parent
CHANCE_MSE = 1 / 6  # predicting the mean of a sum of two U(0, 1): its variance
COLORS = {"plstm": "tab:red", "lstm": "tab:blue", "bnlstm": "tab:green"}
NAMES = {"plstm": "Phased LSTM", "lstm": "LSTM", "bnlstm": "BN-LSTM"}


def first_step_below(records: list[dict], level: float) -> int | None:
    return next((r["step"] for r in records if r["test_loss"] < level), None)


runs = []
for metrics in sorted(here.glob("*/metrics.jsonl")):
    config = json.loads((metrics.parent / "config.json").read_text())
    records = [json.loads(line) for line in metrics.read_text().splitlines() if '"test_loss"' in line]
    runs.append({"run": metrics.parent.name, "config": config, "records": records})

lengths = sorted({(r["config"]["task"]["min_length"], r["config"]["task"]["max_length"]) for r in runs})
fig, axes = plt.subplots(1, len(lengths), figsize=(4.3 * len(lengths), 3.4), squeeze=False)
summary = {}
for ax, (lo, hi) in zip(axes[0], lengths):
    for run in (r for r in runs if (r["config"]["task"]["min_length"], r["config"]["task"]["max_length"]) == (lo, hi)):
        model = run["config"]["model"]["model"]
        steps = [r["step"] for r in run["records"]]
        ax.plot(steps, [r["test_loss"] for r in run["records"]], color=COLORS[model], label=NAMES[model], lw=1.2)
        last = run["records"][-1]
        summary[run["run"]] = {
            "model": model, "lengths": [lo, hi], "grad_clip": run["config"]["grad_clip"],
            "period_init_range": run["config"]["model"]["period_init_range"],
            "steps_to_mse_0.1": first_step_below(run["records"], 0.1),
            "steps_to_mse_0.01": first_step_below(run["records"], 0.01),
            "final_step": last["step"], "final_test_mse": last["test_loss"],
            "final_within_0.04": last["test_accuracy"], "test_examples": last["test_examples"],
        }
    ax.axhline(CHANCE_MSE, color="grey", ls=":", lw=1, label="predict the mean (1/6)")
    ax.set_yscale("log")
    ax.set_title(f"adding task, {lo}-{hi} steps")
    ax.set_xlabel("training step (batch 32)")
    ax.set_ylabel("held-out MSE")
    ax.legend(fontsize=7)
fig.tight_layout()
fig.savefig(here / "adding_mse.png", dpi=120)
(here / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
for name, s in summary.items():
    print(name, s["steps_to_mse_0.1"], s["steps_to_mse_0.01"], s["final_step"], round(s["final_test_mse"], 4))
