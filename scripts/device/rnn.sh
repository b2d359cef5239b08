#!/usr/bin/env bash
# Phased LSTM on the shared GPU run: train Phased LSTM and the LSTM / BN-LSTM baselines on the
# frequency-discrimination task under the paper's three samplings, all at once in parallel
# processes (one CPU thread each), stop at the wall budget with a checkpoint, then evaluate
# every checkpoint on the fixed test set and time PhasedLSTM vs nn.LSTM on the GPU.
#
# Usage (repository root):  OUT=/tmp/o MINUTES=7 bash scripts/device/rnn.sh
#   CPU smoke test here:    OUT=/tmp/o MINUTES=0.3 DEVICE=cpu bash scripts/device/rnn.sh
# Writes $OUT/rnn/<model>-frequency-<sampling>/ (run folders: checkpoints + metrics.jsonl, the
# accuracy-vs-epoch curve), $OUT/rnn/eval/<run>.json, $OUT/rnn/summary.json, plstm_speed.json.
set -u
OUT="${OUT:?set OUT}"
MINUTES="${MINUTES:-7}"
DEVICE="${DEVICE:-cuda}"
EPOCH_SIZE="${EPOCH_SIZE:-2000}"   # one curve point every 2,000 examples (the paper's epoch is 10,000)
EPOCHS=$(( 700000 / EPOCH_SIZE ))  # the paper's 70 x 10,000 examples; the time budget stops us first
EVAL_EXAMPLES="${EVAL_EXAMPLES:-1000}"  # test examples evaluated after each epoch
TEST_EXAMPLES="${TEST_EXAMPLES:-2000}"  # final evaluation (the CLI default)
PY="${PYTHON:-python3}"
export PYTHONPATH="$(pwd)/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
dest="$OUT/rnn"
mkdir -p "$dest/eval" "$dest/logs"
# Leave time for evaluation and the benchmark: train for 75% of the budget, at most MINUTES - 1.5.
train_minutes=$(awk -v m="$MINUTES" 'BEGIN { t = m * 0.75; if (m - 1.5 > 0 && m - 1.5 < t) t = m - 1.5; printf "%.2f", t }')
echo "rnn: device=$DEVICE budget=${MINUTES} min, training ${train_minutes} min per run"

# model:task:sampling -- the frequency task under the paper's three samplings, and the adding task
# (long sequences, 490-510 steps).
runs=(plstm:frequency:standard lstm:frequency:standard bnlstm:frequency:standard
      plstm:frequency:high_resolution lstm:frequency:high_resolution
      plstm:frequency:async lstm:frequency:async bnlstm:frequency:async
      plstm:adding:async lstm:adding:async)
run_name() { IFS=: read -r model task sampling <<< "$1"
  if [ "$task" = frequency ]; then echo "$model-frequency-$sampling"; else echo "$model-$task"; fi; }
pids=()
for run in "${runs[@]}"; do
  IFS=: read -r model task sampling <<< "$run"; name=$(run_name "$run")
  extra=(); [ "$task" = adding ] && extra=(--period-init-range 2.718 403.4)  # exp(U(1, 6)) for long sequences
  $PY -m metashot.cli rnn train --task "$task" --sampling "$sampling" --model "$model" \
      --epochs "$EPOCHS" --epoch-size "$EPOCH_SIZE" --eval-examples "$EVAL_EXAMPLES" --out "$dest/$name" --resume --device "$DEVICE" \
      --max-minutes "$train_minutes" --no-progress --json "${extra[@]}" > "$dest/logs/$name.train.json" 2> "$dest/logs/$name.log" &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || echo "rnn: a training process exited with $?"; done

for run in "${runs[@]}"; do
  name=$(run_name "$run")
  $PY -m metashot.cli rnn evaluate --checkpoint "$dest/$name" --json --examples "$TEST_EXAMPLES" --device "$DEVICE" \
      > "$dest/eval/$name.json" 2>> "$dest/logs/$name.log" &
done
wait
$PY - "$dest" <<'PYEOF'
import json, pathlib, sys
dest = pathlib.Path(sys.argv[1])
summary = {p.stem: json.loads(p.read_text()) for p in sorted((dest / "eval").glob("*.json")) if p.stat().st_size}
(dest / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
for name, r in summary.items():
    print(f"{name:34s} accuracy {r['accuracy']:.4f}  step {r['step']}  open {r.get('open_update_fraction', '-')}")
PYEOF
if [ "$DEVICE" = cuda ]; then
  timeout 120 $PY benchmarks/plstm_speed.py --device cuda --backends eager fused script --repeats 5 --warmup 3 \
      --json-out "$dest/plstm_speed.json" > "$dest/logs/speed.log" 2>&1 || echo "rnn: benchmark failed or timed out"
  cat "$dest/logs/speed.log"
fi
echo "rnn: done"
