#!/usr/bin/env bash
# GPU run of metashot.optim (learned optimizers), launched by scripts/device/run_all.sh.
#
#   OUT=/folder MINUTES=7 METASHOT_DATA=/data bash scripts/device/optim.sh
#   (local check on CPU:  OPTIM_DEVICE=cpu OPTIM_QUICK=1 MINUTES=0.5 OUT=/tmp/dev bash scripts/device/optim.sh)
#
# 1. Meta-train, for ~50% of MINUTES, four candidates at once: mnist-mlp and mnist-mlp-mixed (our
#    ReLU-robust variant: sigmoid/relu/tanh/elu problems) on the GPU, resumed from (mnist-mlp) or
#    initialised from (mixed) the committed checkpoints/l2l-mnist-mlp when present, plus a fresh
#    meta-lr 3e-3 candidate of each on CPU cores. Per task, the candidate with the lower
#    validation loss (held-out optimizees, best/state.json) is kept: model selection, not test data.
# 2. `metashot optim compare` on the device, seven in parallel: mnist-mlp at
#    100 and 200 steps, -wide, -deep, -relu with the mnist-mlp optimizer, -relu with the mixed one.
# Everything lands in $OUT/optim/: runs, compare JSON + PNG, logs, selected.txt.
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
common=(--no-progress --eval-every 10 --checkpoint-every 10 "${budget[@]}")

# --- 1. meta-training -------------------------------------------------------------------------------
if [ -f checkpoints/l2l-mnist-mlp/latest ]; then
  cp -r checkpoints/l2l-mnist-mlp "$out/gpu-mnist-mlp"
  mlp_start=(--resume)
  mix_start=(--init-from checkpoints/l2l-mnist-mlp)
else
  mlp_start=(); mix_start=()
fi
OMP_NUM_THREADS=2 ms meta-train --task mnist-mlp --out "$out/gpu-mnist-mlp" --device "$DEVICE" --fuse-parameters \
  "${common[@]}" "${mlp_start[@]}" > "$out/train-gpu-mnist-mlp.log" 2>&1 &
p1=$!
OMP_NUM_THREADS=2 ms meta-train --task mnist-mlp-mixed --out "$out/gpu-mnist-mlp-mixed" --device "$DEVICE" \
  --fuse-parameters "${common[@]}" "${mix_start[@]}" > "$out/train-gpu-mnist-mlp-mixed.log" 2>&1 &
p2=$!
OMP_NUM_THREADS=4 ms meta-train --task mnist-mlp --out "$out/cpu-mnist-mlp" --device cpu --meta-lr 3e-3 --seed 1 \
  "${common[@]}" > "$out/train-cpu-mnist-mlp.log" 2>&1 &
p3=$!
OMP_NUM_THREADS=4 ms meta-train --task mnist-mlp-mixed --out "$out/cpu-mnist-mlp-mixed" --device cpu --meta-lr 3e-3 \
  --seed 1 "${common[@]}" > "$out/train-cpu-mnist-mlp-mixed.log" 2>&1 &
p4=$!
wait $p1 $p2 $p3 $p4
for f in "$out"/train-*.log; do echo "== $f"; tail -n 3 "$f"; done

# Model selection per task: the candidate with the lowest validation loss.
pick() {  # pick TASK -> prints the run folder
  "$PY" - "$out" "$1" <<'PYEOF'
import json, math, sys
from pathlib import Path
out, task = Path(sys.argv[1]), sys.argv[2]
best = (math.inf, "")
for run in (out / f"gpu-{task}", out / f"cpu-{task}"):
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
echo "optim: done"
