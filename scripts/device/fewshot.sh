#!/usr/bin/env bash
# Few-shot (Matching Networks, issue 3) on the GPU machine, within $MINUTES of wall time.
#
# Trains concurrently on one GPU (shared with the other systems' scripts):
#   matching-1shot      Matching Networks, 20-way 1-shot 15-query episodes  -> tested 5-way and 20-way 1-shot
#   matching-5shot      Matching Networks, 20-way 5-shot 15-query episodes  -> tested 5-way and 20-way 5-shot
#   matching-fce-1shot  the same as matching-1shot with full context embeddings (K = 5 read steps)
#   protonet-1shot      Prototypical Networks, 60-way 1-shot 5-query (Snell et al.'s recipe)
#   protonet-5shot      Prototypical Networks, 60-way 5-shot 5-query
#   baseline            Conv4 classifier over the 4800 training classes (features + cosine NN)
# One model per shot count serves both test ways (trained with more ways, as ProtoNets do).
# Each run is first calibrated (a short throw-away run measures its steps/s under the real
# contention), then trained for as many steps as fit before the evaluation reserve, with the
# learning rate halved at 25/50/75% of those steps and --max-minutes as a safety stop.
# Then every model (and the pixel baseline) is scored on the same 1000 seeded test episodes
# (seed 0, 15 queries per class) for 5/20-way 1/5-shot; JSON goes to $OUT/fewshot/results/.
#
# Usage (repository root; PYTHONPATH=src as run_all.sh sets it):
#   OUT=/tmp/out METASHOT_DATA=/path/to/data MINUTES=8 bash scripts/device/fewshot.sh
# CPU smoke test of the whole script (tiny budget, few steps and episodes):
#   OUT=/tmp/fs MINUTES=0.4 FEWSHOT_DEVICE=cpu FEWSHOT_CALIBRATION_STEPS=3 FEWSHOT_EPISODES=10 \
#     PYTHONPATH=src METASHOT_DATA=../shared/data bash scripts/device/fewshot.sh
set -u
# --- install mode: copy a finished GPU run into the repository -------------------------------------
#   bash scripts/device/fewshot.sh --install /path/to/extracted/fewshot
# (the fewshot/ folder of the unpacked results tarball; ../machine.txt beside it names the card).
# Writes checkpoints/omniglot-*/ (config.json, model.safetensors, state.json, metrics.jsonl, README.md
# with the exact commands), results/fewshot/gpu/*.json, and the results table in docs/fewshot.md.
# An existing CPU checkpoint in checkpoints/omniglot-matching-5way1shot/ moves to ...-cpu/.
if [ "${1:-}" = "--install" ]; then
  PYTHONPATH="$(pwd)/src${PYTHONPATH:+:$PYTHONPATH}" exec "${PYTHON:-python3}" - "${2:?folder}" <<'EOF'
import json, shutil, subprocess, sys
from pathlib import Path

from metashot.fewshot.report import results_table

src = Path(sys.argv[1])
machine = (src.parent / "machine.txt").read_text().strip() if (src.parent / "machine.txt").exists() else "unknown"
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
summary = json.loads((src / "summary.json").read_text())
folders = {  # the FCE model serves all four settings; the no-FCE models one shot count each
    "omniglot-matching-5way1shot": "matching-fce-1shot", "omniglot-matching-20way1shot": "matching-fce-1shot",
    "omniglot-matching-5way5shot": "matching-fce-1shot", "omniglot-matching-20way5shot": "matching-fce-1shot",
    "omniglot-matching-nofce-1shot": "matching-1shot", "omniglot-matching-nofce-5shot": "matching-5shot",
    "omniglot-protonet-1shot": "protonet-1shot",
    "omniglot-protonet-5shot": "protonet-5shot", "omniglot-baseline": "baseline",
}
cpu = Path("checkpoints/omniglot-matching-5way1shot")
if (cpu / "README.md").exists() and "CPU run" in (cpu / "README.md").read_text():
    target = Path("checkpoints/omniglot-matching-5way1shot-cpu")
    shutil.rmtree(target, ignore_errors=True)
    shutil.move(str(cpu), target)
for folder, run in folders.items():
    run_dir = src / "runs" / run
    if not (run_dir / "latest").exists():
        print(f"skip {folder}: {run_dir} has no checkpoint")
        continue
    ckpt = run_dir / (run_dir / "latest").read_text().strip()
    dest = Path("checkpoints") / folder
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "model.safetensors", "state.json"):
        shutil.copy(ckpt / name, dest / name)
    if (run_dir / "metrics.jsonl").exists():
        shutil.copy(run_dir / "metrics.jsonl", dest / "metrics.jsonl")
    command = (src / "runs" / f"{run}.command").read_text().strip()
    command = command.replace(str(src / "runs"), "runs").replace("python3 -m metashot.cli", "metashot")
    train = json.loads((src / "runs" / f"{run}.json").read_text() or "{}")
    evals = [r for r in summary if r.get("model") == run and r.get("accuracy") is not None]
    twins = [f for f, r in folders.items() if r == run and f != folder]
    lines = [f"# {folder}", "", f"GPU run of `scripts/device/fewshot.sh` (run `{run}`), seed 0, on: {machine}.",
             f"Installed at commit {commit}.", "", "Trained with:", "", "```", command, "```", "",
             f"Steps done: {train.get('step')} in {train.get('seconds')} s "
             f"({train.get('episodes_per_second')} training episodes/s, shared GPU); stopped by the time budget: "
             f"{train.get('stopped_early')}."]
    if twins:
        lines += ["", f"The same weights are in {', '.join(twins)}: one model, trained with more ways than tested, "
                  "serves all these test settings."]
    lines += ["", "| test setting | accuracy | command |", "|---|---|---|"]
    for r in evals:
        cmd = f"metashot fewshot evaluate --checkpoint checkpoints/{folder} --way {r['way']} --shot {r['shot']} --episodes {r['episodes']} --seed 0 --json"
        lines.append(f"| {r['way']}-way {r['shot']}-shot | {100 * r['accuracy']:.2f} ± {100 * r['ci95']:.2f}% | `{cmd}` |")
    (dest / "README.md").write_text("\n".join(lines) + "\n")
    print(f"installed {folder} <- {ckpt}")
gpu = Path("results/fewshot/gpu")
gpu.mkdir(parents=True, exist_ok=True)
for f in (src / "results").glob("*.json"):
    shutil.copy(f, gpu / f.name)
shutil.copy(src / "summary.json", gpu / "summary.json")
for f in (src / "runs").glob("*.command"):
    shutil.copy(f, gpu / f.name)
(gpu / "machine.txt").write_text(machine + "\n")
table = results_table(summary, f"GPU run of `scripts/device/fewshot.sh` on {machine.splitlines()[1] if len(machine.splitlines()) > 1 else machine}; raw JSON in `results/fewshot/gpu/`.")
doc = Path("docs/fewshot.md")
text = doc.read_text()
start, end = "<!-- gpu-results:start -->", "<!-- gpu-results:end -->"
if start in text and end in text:
    text = text[: text.index(start) + len(start)] + "\n" + table + "\n" + text[text.index(end):]
    doc.write_text(text)
print(table)
EOF
fi
: "${OUT:?set OUT to the output folder}"
MINUTES="${MINUTES:-8}"
DEVICE="${FEWSHOT_DEVICE:-cuda}"
CAL_STEPS="${FEWSHOT_CALIBRATION_STEPS:-400}"
CAL_LOG=$(( CAL_STEPS / 4 > 0 ? CAL_STEPS / 4 : 1 ))
EPISODES="${FEWSHOT_EPISODES:-1000}"
PY="${PYTHON:-python3}"
export PYTHONPATH="$(pwd)/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
dir="$OUT/fewshot"
mkdir -p "$dir/runs" "$dir/results" "$dir/logs" "$dir/calibration"
start=$(date +%s)
# Seconds kept for the evaluation at the end (scaled down for tiny smoke-test budgets).
reserve=$($PY -c "print(int(min(100, 0.25 * $MINUTES * 60)))")
echo "fewshot: device $DEVICE, budget $MINUTES min, eval reserve ${reserve}s, $(date -u +%FT%TZ)"

declare -A ARGS=(
  [matching-1shot]="--method matching --way 20 --shot 1 --query 15 --episodes-per-step 2"
  [matching-5shot]="--method matching --way 20 --shot 5 --query 15"
  [matching-fce-1shot]="--method matching --fce --way 20 --shot 1 --query 15"
  [protonet-1shot]="--method protonet --way 60 --shot 1 --query 5"
  [protonet-5shot]="--method protonet --way 60 --shot 5 --query 5"
  [baseline]="--method baseline --batch-size 256"
)
NAMES=(matching-1shot matching-5shot matching-fce-1shot protonet-1shot protonet-5shot baseline)

# --- 1. calibration: steps/s of each run under the real (concurrent) load ---
for name in "${NAMES[@]}"; do
  $PY -m metashot.cli fewshot train ${ARGS[$name]} --dataset omniglot --out "$dir/calibration/$name" \
    --steps 1000000 --max-steps "$CAL_STEPS" --log-every "$CAL_LOG" --device "$DEVICE" --no-progress --json --seed 0 \
    > "$dir/calibration/$name.json" 2> "$dir/logs/$name.calibration.log" &
done
wait
now=$(date +%s)
train_seconds=$(( $($PY -c "print(int($start + $MINUTES * 60 - $reserve))") - now ))
[ "$train_seconds" -lt 5 ] && train_seconds=5
echo "fewshot: calibration took $(( now - start ))s; training for ${train_seconds}s"

# --- 2. training, all runs at once ---
pids=()
for name in "${NAMES[@]}"; do
  steps=$($PY - "$dir/calibration/$name" "$train_seconds" <<'EOF'
import json, sys
from pathlib import Path
run, seconds = Path(sys.argv[1]), float(sys.argv[2])
try:  # steady-state rate from the metrics lines (skips start-up and cuDNN autotuning)
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]
    first, last = lines[0], lines[-1]
    steps_per_second = (last["step"] - first["step"]) / (last["seconds"] - first["seconds"])
except Exception:
    try:  # fewer than two metrics lines: the whole-run average from the JSON summary
        info = json.loads(Path(str(run) + ".json").read_text())
        per_step = info["config"]["episodes_per_step"] if info["config"]["model"]["method"] != "baseline" else 1
        steps_per_second = info["episodes_per_second"] / per_step
    except Exception:  # calibration failed: a guess that --max-minutes will cut anyway
        steps_per_second = 20.0
# 0.85 keeps the schedule inside the budget when the load changes (start-up also counts).
print(max(4, int(0.85 * steps_per_second * seconds)))
EOF
)
  rm -rf "$dir/calibration/$name"/checkpoint-* "$dir/calibration/$name"/.tmp-*  # keep only its metrics (small tarball)
  decay=$(( steps / 4 > 0 ? steps / 4 : 1 ))
  cmd="$PY -m metashot.cli fewshot train ${ARGS[$name]} --dataset omniglot --out $dir/runs/$name --steps $steps --lr-decay-every $decay --checkpoint-every 1000000 --log-every 100 --max-minutes $($PY -c "print(round($train_seconds / 60, 3))") --device $DEVICE --seed 0 --no-progress --json"
  echo "$cmd" > "$dir/runs/$name.command"
  echo "fewshot: $cmd"
  $cmd > "$dir/runs/$name.json" 2> "$dir/logs/$name.train.log" &
  pids+=($!)
done
wait "${pids[@]}"
for name in "${NAMES[@]}"; do echo "fewshot: $name -> $(cat "$dir/runs/$name.json" 2>/dev/null | head -c 300)"; done

# --- 3. evaluation: every model on the same fixed episodes (seed 0) ---
$PY - "$dir" "$DEVICE" "$EPISODES" <<'EOF' 2>&1 | tee "$dir/logs/evaluate.log"
import json, sys, time
from pathlib import Path

from metashot.cliutils import _clean
from metashot.fewshot.evaluate import evaluate_setting

root, device, episodes = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
settings = [(5, 1), (5, 5), (20, 1), (20, 5)]
serves = {  # model -> the test settings it is scored on
    "matching-1shot": [(5, 1), (20, 1)],
    "matching-5shot": [(5, 5), (20, 5)],
    "matching-fce-1shot": [(5, 1), (20, 1)],
    "protonet-1shot": [(5, 1), (20, 1)],
    "protonet-5shot": [(5, 5), (20, 5)],
    "baseline": settings,
    "pixels": settings,
}
summary = []
for name, todo in serves.items():
    checkpoint = None if name == "pixels" else root / "runs" / name
    for way, shot in todo:
        t = time.time()
        try:
            result = evaluate_setting(
                checkpoint=checkpoint, method="pixels" if name == "pixels" else None, way=way, shot=shot,
                query=15, episodes=episodes, seed=0, device=device,
            )
        except Exception as exc:  # keep going: report what failed
            result = {"error": f"{type(exc).__name__}: {exc}", "way": way, "shot": shot}
        result["model"] = name
        result["seconds"] = round(time.time() - t, 2)
        ckpt = "--method pixels" if name == "pixels" else f"--checkpoint runs/{name}"
        result["command"] = (
            f"metashot fewshot evaluate {ckpt} --way {way} --shot {shot} --episodes {episodes} --seed 0 --json"
        )
        (root / "results" / f"{name}-{way}way{shot}shot.json").write_text(json.dumps(_clean(result), indent=2) + "\n")
        summary.append(result)
        acc = result.get("accuracy")
        print(f"{name:20s} {way:2d}-way {shot}-shot: "
              + (f"{100 * acc:.2f} +- {100 * result['ci95']:.2f}%" if acc is not None else result.get("error", "?")),
              flush=True)
(root / "summary.json").write_text(json.dumps(_clean(summary), indent=2) + "\n")
EOF
# (The GPU speed benchmark runs alone on the idle card at the end of run_all.sh.)
echo "fewshot: done in $(( $(date +%s) - start ))s"
