#!/usr/bin/env bash
# Continue training a committed paper-size chem VAE on the GPU (session 8): start from its exported
# weights (--init-from: fresh Adam, warm restart of the learning rate, cosine decay over the whole
# time budget), KL weight held at $KL from the first step; then export (fp16) and decode the
# evaluation protocol on the GPU (scored later with RDKit: the GPU machine has none).
#
# Usage, from the repository root on the GPU machine:
#   OUT=/some/folder MINUTES=4 METASHOT_DATA=.devdata bash scripts/device/chem_finetune.sh
# Env: INIT (default checkpoints/chem-vae-zinc), KL (0.03), LR (3e-4), DEVICE (cuda), CHEM_EXTRA and
# CHEM_EVAL (word-split extra flags, e.g. for a CPU smoke test: CHEM_EXTRA="--max-molecules 3000").
# Writes $OUT/: model/ (fp16 export), train.json, train.log, metrics.jsonl, decodes.json, evaluate_nordkit.json.
set -u
export PYTHONPATH="$(pwd)/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export METASHOT_DATA="$(cd "${METASHOT_DATA:?set METASHOT_DATA}" && pwd)"
: "${OUT:?set OUT}"
INIT="${INIT:-checkpoints/chem-vae-zinc}"
PY="${PYTHON:-python3}"
run=$(mktemp -d /tmp/metashot-finetune.XXXX)/run
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/machine.txt" 2>&1
# kl midpoint -1 with slope 16: the weight is KL * sigmoid(16) from the first step (no re-annealing)
# shellcheck disable=SC2086  # CHEM_EXTRA and CHEM_EVAL are word-split on purpose
"$PY" -m metashot.cli chem train --config "$INIT/config.json" --init-from "$INIT" --kl-schedule budget \
  --kl-midpoint -1 --kl-slope 16 --kl-max "${KL:-0.03}" --lr "${LR:-3e-4}" --lr-schedule budget --lr-decay-start 0 \
  --lr-final 0.05 --max-minutes "${MINUTES:-4}" --device "${DEVICE:-cuda}" --seed 1 --no-progress --json \
  --out "$run" ${CHEM_EXTRA:-} > "$OUT/train.json" 2> "$OUT/train.log"
cp "$run/metrics.jsonl" "$OUT/"
"$PY" -c "from metashot.chem.train import export_weights; export_weights('$run', '$OUT/model')"
# shellcheck disable=SC2086
"$PY" -m metashot.cli chem evaluate --checkpoint "$run" --device "${DEVICE:-cuda}" --json --seed 0 \
  ${CHEM_EVAL:---molecules 1000 --decodes 10 --prior-samples 5000} --save-decodes "$OUT/decodes.json" \
  > "$OUT/evaluate_nordkit.json" 2>> "$OUT/train.log"
cat "$OUT/train.json" "$OUT/evaluate_nordkit.json"
tail -n 3 "$OUT/train.log"
