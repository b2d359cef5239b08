#!/usr/bin/env bash
# GPU run of metashot.chem (run by the lead):  OUT=... METASHOT_DATA=... MINUTES=8 bash scripts/device/chem.sh
# Afterwards, here:                            bash scripts/device/chem.sh finish OUT
#
# GPU run of metashot.chem: train the paper-size SMILES VAE on ZINC-250k for $MINUTES, then decode
# the evaluation set (held-out reconstructions + prior samples) on the GPU. Scoring with RDKit
# (validity, uniqueness, novelty) happens afterwards on a machine with RDKit:
#   metashot chem evaluate --checkpoint checkpoints/chem-vae-zinc --from-decodes results/chem/gpu_decodes.json --json
#
# Env: OUT (output folder), METASHOT_DATA (data folder), MINUTES (wall budget for this script,
# default 8). CHEM_DEVICE=cpu and CHEM_MAX_MOLECULES=N make a CPU smoke test possible.
# Writes $OUT/chem/: chem-vae-zinc/ (fp16 weights + config.json + state.json, ~8.5 MB),
# metrics.jsonl, train.json, decodes.json, evaluate.json, train.log.
set -euo pipefail
HERE="$(cd "$(dirname "$0")/../.." && pwd)"

# --- after the GPU run, here (with RDKit): bash scripts/device/chem.sh finish GPU_OUT_DIR -------------
# Copies GPU_OUT_DIR/chem/{chem-vae-zinc,metrics.jsonl,decodes.json,...} into checkpoints/ and
# results/chem/, then scores the GPU decodes with RDKit (same code as `metashot chem evaluate`).
if [ "${1:-}" = "finish" ]; then
  SRC="${2:?usage: chem.sh finish GPU_OUT_DIR}/chem"
  REPO="${REPO:-$HERE}"
  PY="${PYTHON:-$REPO/.venv/bin/python}"
  CK="$REPO/checkpoints/chem-vae-zinc"
  RES="$REPO/results/chem"
  mkdir -p "$CK" "$RES"
  cp "$SRC/chem-vae-zinc/config.json" "$SRC/chem-vae-zinc/state.json" "$SRC/chem-vae-zinc/model.safetensors" "$CK/"
  cp "$SRC/metrics.jsonl" "$RES/gpu_metrics.jsonl"
  cp "$SRC/decodes.json" "$RES/gpu_decodes.json"
  cp "$SRC/train.json" "$RES/gpu_train.json"
  cp "$SRC/evaluate.json" "$RES/gpu_evaluate_nordkit.json"
  [ -f "$SRC/speed_cuda.json" ] && cp "$SRC/speed_cuda.json" "$RES/speed_cuda.json"
  PYTHONPATH="$REPO/src:${PYTHONPATH:-}" "$PY" -m metashot.cli chem evaluate --checkpoint "$CK" \
    --from-decodes "$RES/gpu_decodes.json" --json > "$RES/evaluate_gpu.json"
  cat "$RES/evaluate_gpu.json"
  PYTHONPATH="$REPO/src:${PYTHONPATH:-}" "$PY" -c \
    "from metashot.chem.report import write_gpu_summary; print(write_gpu_summary('$RES', '$CK'))"
  # figures drawn with RDKit: an interpolation and a Bayesian-optimisation run
  PYTHONPATH="$REPO/src:${PYTHONPATH:-}" "$PY" -m metashot.cli chem interpolate --checkpoint "$CK" \
    'CC(C)(C)c1ccc2occ(CC(=O)Nc3ccccc3F)c2c1' 'C[C@@H]1CC(Nc2cncc(-c3nncn3C)c2)C[C@@H](C)C1' --steps 8 \
    --image "$RES/interpolation.png" --json --device cpu > "$RES/interpolation.json"
  PYTHONPATH="$REPO/src:${PYTHONPATH:-}" "$PY" -m metashot.cli chem optimize --checkpoint "$CK" --objective qed-sas \
    --iterations "${CHEM_BO_ITERATIONS:-30}" --seed 0 --image "$RES/optimization.png" --json --device cpu \
    > "$RES/optimization.json"
  exit 0
fi

: "${OUT:?set OUT}"
: "${METASHOT_DATA:?set METASHOT_DATA}"
MINUTES="${MINUTES:-8}"
DEVICE="${CHEM_DEVICE:-cuda}"
PY="${PYTHON:-python3}"
export PYTHONPATH="${PYTHONPATH:-}:$HERE/src"
DEST="$OUT/chem"
RUN="${TMPDIR:-/tmp}/metashot-chem-run-$$"
mkdir -p "$DEST"
# Leave ~65 s of the budget for start-up (data loading ~10 s), the final checkpoint, export, decoding
# and the speed benchmark (~15 s).
TRAIN_MINUTES=$("$PY" -c "print(max(0.1, $MINUTES - 1.1))")
EXTRA=()
if [ -n "${CHEM_MAX_MOLECULES:-}" ]; then EXTRA+=(--max-molecules "$CHEM_MAX_MOLECULES"); fi
# CHEM_TRAIN_ARGS: extra `chem train` flags, e.g. "--kl-max 0.05" (word-split on purpose).
if [ -n "${CHEM_TRAIN_ARGS:-}" ]; then read -r -a _extra <<< "$CHEM_TRAIN_ARGS"; EXTRA+=("${_extra[@]}"); fi
EVAL_MOLECULES="${CHEM_EVAL_MOLECULES:-1000}"
PRIOR="${CHEM_PRIOR_SAMPLES:-5000}"
DECODES="${CHEM_DECODES:-10}"

echo "chem: training paper-size VAE for $TRAIN_MINUTES min on $DEVICE -> $RUN" >&2
"$PY" -m metashot.cli chem train --dataset zinc250k --preset paper-fast --out "$RUN" \
  --device "$DEVICE" --max-minutes "$TRAIN_MINUTES" --no-progress --seed 0 --json ${EXTRA[@]+"${EXTRA[@]}"} \
  > "$DEST/train.json" 2> >(tee "$DEST/train.log" >&2)
cp "$RUN/metrics.jsonl" "$DEST/metrics.jsonl"
"$PY" -c "from metashot.chem.train import export_weights; export_weights('$RUN', '$DEST/chem-vae-zinc')"
echo "chem: decoding the evaluation set" >&2
"$PY" -m metashot.cli chem evaluate --checkpoint "$RUN" --device "$DEVICE" --json --seed 0 \
  --molecules "$EVAL_MOLECULES" --decodes "$DECODES" --prior-samples "$PRIOR" \
  --save-decodes "$DEST/decodes.json" > "$DEST/evaluate.json"
rm -rf "$RUN"
if [ "${CHEM_BENCH:-1}" = "1" ]; then
  echo "chem: speed benchmark (ours only: the MOSES peer needs its wheel, not on this machine)" >&2
  "$PY" "$HERE/benchmarks/chem_speed.py" --device "$DEVICE" --steps "${CHEM_BENCH_STEPS:-10}" \
    --batch 256 --decode 1000 --out "$DEST/speed_${DEVICE}.json" >&2 || echo "chem: benchmark failed (ignored)" >&2
fi
echo "chem: done" >&2
ls -la "$DEST" >&2
