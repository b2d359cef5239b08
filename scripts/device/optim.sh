#!/usr/bin/env bash
# GPU run of metashot.optim (learned optimizers), launched by scripts/device/run_all.sh.
#
#   OUT=/folder MINUTES=7 METASHOT_DATA=/data bash scripts/device/optim.sh
#   (local check on CPU:  OPTIM_DEVICE=cpu OPTIM_QUICK=1 MINUTES=0.5 OUT=/tmp/dev bash scripts/device/optim.sh)
#
# 1. Meta-train, for ~50% of MINUTES, four candidates at once on the GPU: mnist-mlp and
#    mnist-mlp-mixed (our ReLU-robust variant: sigmoid/relu/tanh/elu problems), each at meta-lr 1e-3
#    (paper) and 3e-3, warm-started from the committed checkpoints/l2l-mnist-mlp when present.
#    Per task, the candidate with the lower validation loss (held-out optimizees,
#    best/state.json) is kept: model selection, not test data.
# 2. `metashot optim compare` on the device, seven in parallel: mnist-mlp at
#    100 and 200 steps, -wide, -deep, -relu with the mnist-mlp optimizer, -relu with the mixed one.
# 3. benchmarks/optim_speed.py on the device.
# Everything lands in $OUT/optim/: runs, compare JSON + PNG, logs, selected.txt, speed-cuda.json.
set -u
: "${OUT:?set OUT}"
MINUTES="${MINUTES:-7}"
DEVICE="${OPTIM_DEVICE:-cuda}"
PY="${PYTHON:-python3}"
root=$(pwd)
export PYTHONPATH="$root/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
out="$OUT/optim"
mkdir -p "$out"
train_min=$(awk -v m="$MINUTES" 'BEGIN { printf "%.2f", m * 0.5 }')
# OPTIM_QUICK=1: a smoke test of this script (2 unrolls per candidate, 5-step compares).
if [ -n "${OPTIM_QUICK:-}" ]; then
  runs=2; tune=1; grid="--lr-grid 0.01,0.1"; steps=5; long=10; budget=(--max-steps 2 --num-val 1)
else
  runs=20; tune=3; grid=""; steps=100; long=200; budget=(--max-minutes "$train_min")
fi
echo "optim: device=$DEVICE minutes=$MINUTES train_minutes=$train_min runs=$runs"

ms() { "$PY" -m metashot.cli optim "$@"; }
common=(--no-progress --eval-every 25 --checkpoint-every 25 "${budget[@]}")

# --- 1. meta-training -------------------------------------------------------------------------------
# Four candidates share the GPU (one LSTM call over all coordinates per step: --fuse-parameters).
# With a committed checkpoints/l2l-mnist-mlp (a CPU run), A resumes it and B, C, D start from its
# weights; without one, all start fresh.
if [ -f checkpoints/l2l-mnist-mlp/latest ]; then
  cp -r checkpoints/l2l-mnist-mlp "$out/gpu-mnist-mlp"
  a_start=(--resume); warm=(--init-from checkpoints/l2l-mnist-mlp)
else
  a_start=(); warm=()
fi
train() {  # train NAME TASK ARGS...
  local name=$1 task=$2; shift 2
  OMP_NUM_THREADS="${OPTIM_THREADS:-2}" ms meta-train --task "$task" --out "$out/$name" --device "$DEVICE" --fuse-parameters \
    "${common[@]}" "$@" > "$out/train-$name.log" 2>&1
}
train gpu-mnist-mlp mnist-mlp "${a_start[@]}" &
train gpu-mnist-mlp-lr3 mnist-mlp --meta-lr 3e-3 --seed 1 "${warm[@]}" &
train gpu-mnist-mlp-mixed mnist-mlp-mixed "${warm[@]}" &
train gpu-mnist-mlp-mixed-lr3 mnist-mlp-mixed --meta-lr 3e-3 --seed 1 "${warm[@]}" &
wait
for f in "$out"/train-*.log; do echo "== $f"; tail -n 3 "$f"; done

# Model selection per task: the candidate with the lowest validation loss.
pick() {  # pick TASK -> prints the run folder
  "$PY" - "$out" "$1" <<'PYEOF'
import json, math, sys
from pathlib import Path
out, task = Path(sys.argv[1]), sys.argv[2]
best = (math.inf, "")
for run in (out / f"gpu-{task}", out / f"gpu-{task}-lr3"):
    state = run / "best" / "state.json"
    if state.is_file():
        val = json.loads(state.read_text()).get("val_loss", math.inf)
        print(f"{run.name}: val_loss {val}", file=sys.stderr)
        best = min(best, (val if val is not None else math.inf, str(run)))
print(best[1])
PYEOF
}
mlp=$(pick mnist-mlp 2>>"$out/selected.txt"); mix=$(pick mnist-mlp-mixed 2>>"$out/selected.txt")
echo "mnist-mlp -> $mlp" >> "$out/selected.txt"; echo "mnist-mlp-mixed -> $mix" >> "$out/selected.txt"
cat "$out/selected.txt"

# --- 2. compare (in parallel) ----------------------------------------------------------------------
cmp() {  # cmp NAME CHECKPOINT TASK STEPS
  [ -n "$2" ] || { echo "no checkpoint for $1" >&2; return 0; }
  OMP_NUM_THREADS=1 ms compare --checkpoint "$2" --task "$3" --steps "$4" --runs "$runs" --tune-runs "$tune" $grid \
    --seed 0 --device "$DEVICE" --json --out "$out/compare-$1.json" --plot "$out/compare-$1.png" \
    > /dev/null 2> "$out/compare-$1.log"
}
cmp mnist-mlp "$mlp" mnist-mlp "$steps" &
cmp mnist-mlp-200 "$mlp" mnist-mlp "$long" &
cmp mnist-mlp-wide "$mlp" mnist-mlp-wide "$steps" &
cmp mnist-mlp-deep "$mlp" mnist-mlp-deep "$steps" &
cmp mnist-mlp-relu "$mlp" mnist-mlp-relu "$steps" &
cmp mnist-mlp-relu-mixed "$mix" mnist-mlp-relu "$steps" &
cmp mnist-mlp-mixed-on-sigmoid "$mix" mnist-mlp "$steps" &
wait
"$PY" - "$out" <<'PYEOF'
import json, sys
from pathlib import Path
for f in sorted(Path(sys.argv[1]).glob("compare-*.json")):
    r = json.loads(f.read_text())
    finals = {k: round(v["final_loss"], 4) for k, v in r["optimizers"].items()}
    print(f.stem, r["steps"], finals)
PYEOF
# --- 3. speed on the device (step() vs Adam at 10k/100k/1M parameters; meta-training unrolls/s) ----
if [ "$DEVICE" != "cpu" ]; then
  timeout 120 "$PY" benchmarks/optim_speed.py --device "$DEVICE" --json "$out/speed-$DEVICE.json" \
    > "$out/speed-$DEVICE.log" 2>&1
  cat "$out/speed-$DEVICE.log"
fi
echo "optim: done"
