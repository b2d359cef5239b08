"""Bring the results of `scripts/device/rnn.sh` into the repository.

    python results/rnn/import_device_run.py DIR/rnn        # DIR = the OUT of the GPU run
    OMP_NUM_THREADS=1 .venv/bin/python results/rnn/make_results.py

Copies every `plstm-*` / `lstm-*` run folder into `checkpoints/` (only the latest checkpoint
folder, plus config.json, latest and metrics.jsonl; an existing folder of the same name is
replaced), and the evaluation JSONs, the summary, the speed benchmark, the logs and the BN-LSTM
curves (metrics.jsonl only; its checkpoints are not committed) into `results/rnn/device/`.
"""

import json
import shutil
import sys
from pathlib import Path

root = Path(__file__).resolve().parents[2]
source = Path(sys.argv[1])
device_dir = root / "results" / "rnn" / "device"
device_dir.mkdir(parents=True, exist_ok=True)
for run in sorted(p for p in source.iterdir() if p.is_dir() and (p / "latest").is_file()):
    latest = (run / "latest").read_text().strip()
    if run.name.startswith(("plstm-", "lstm-")):
        target = root / "checkpoints" / run.name
        new_step = json.loads((run / latest / "state.json").read_text())["step"]
        if (target / "latest").is_file():
            old_state = target / (target / "latest").read_text().strip() / "state.json"
            old_step = json.loads(old_state.read_text())["step"] if old_state.is_file() else 0
            if old_step >= new_step:
                print(f"checkpoints/{run.name}: kept (it has {old_step} steps, the GPU run {new_step})")
                continue
            shutil.rmtree(target)
        target.mkdir(parents=True)
        for name in ("config.json", "latest", "metrics.jsonl"):
            if (run / name).is_file():
                shutil.copy2(run / name, target / name)
        shutil.copytree(run / latest, target / latest)
        config = json.loads((run / "config.json").read_text())
        task, model = config["task"], config["model"]["model"]
        flags = (f"--task frequency --sampling {task['sampling']}" if task["name"] == "frequency"
                 else "--task adding --period-init-range 2.718 403.4")
        evaluation = source / "eval" / f"{run.name}.json"
        accuracy = json.loads(evaluation.read_text())["accuracy"] if evaluation.is_file() else None
        (target / "README.md").write_text(
            f"# {run.name}\n\nTrained on the GPU by `scripts/device/rnn.sh` (seed 0, stopped by its time budget "
            f"after {new_step} steps = {new_step * 32 / 10000:.2f} paper-epochs of 10,000 examples):\n\n"
            f"```bash\nmetashot rnn train {flags} --model {model} --epochs {config['epochs']} "
            f"--epoch-size {config['epoch_size']} --out checkpoints/{run.name} --device cuda --max-minutes M --resume\n```\n\n"
            f"Evaluate: `metashot rnn evaluate --checkpoint checkpoints/{run.name} --json`"
            + (f" (accuracy on the GPU: {accuracy:.4f}).\n" if accuracy is not None else ".\n")
            + "`metrics.jsonl`: test accuracy after every epoch of "
            f"{config['epoch_size']} examples.\n"
        )
        print(f"checkpoints/{run.name} <- {run}/{latest}")
    else:
        (device_dir / run.name).mkdir(exist_ok=True)
        shutil.copy2(run / "metrics.jsonl", device_dir / run.name / "metrics.jsonl")
        print(f"results/rnn/device/{run.name}/metrics.jsonl")
for name in ("summary.json", "plstm_speed.json"):
    if (source / name).is_file():
        shutil.copy2(source / name, device_dir / name)
for folder in ("eval", "logs"):
    if (source / folder).is_dir():
        shutil.copytree(source / folder, device_dir / folder, dirs_exist_ok=True)
print("now run: OMP_NUM_THREADS=1 .venv/bin/python results/rnn/make_results.py")
