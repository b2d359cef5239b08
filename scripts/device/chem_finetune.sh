#!/usr/bin/env bash
# Continue training a committed paper-size chem VAE on the GPU (session 8): start from its exported
# weights (--init-from: fresh Adam, warm restart of the learning rate, cosine decay over the whole
# time budget), KL weight held at $KL from the first step; then export (fp16) and decode the
# evaluation protocol on the GPU (scored later with RDKit: the GPU machine has none).
# A thin wrapper over scripts/device/chem_job.sh.
#
# Usage, from the repository root on the GPU machine:
#   OUT=/some/folder MINUTES=4 METASHOT_DATA=.devdata bash scripts/device/chem_finetune.sh
# Env: INIT (default checkpoints/chem-vae-zinc), KL (0.03), LR (3e-4), SEED (1), DEVICE (cuda), CHEM_EXTRA
# (word-split extra train flags, e.g. for a CPU smoke test: CHEM_EXTRA="--max-molecules 3000") and
# CHEM_EVAL (word-split evaluate flags).
# Writes $OUT/finetune/: model/ (fp16 export), train.json, train.log, metrics.jsonl, decodes.json,
# evaluate_nordkit.json (see chem_job.sh).
set -u
: "${OUT:?set OUT}"
INIT="${INIT:-checkpoints/chem-vae-zinc}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/machine.txt" 2>&1
read -r -a extra <<< "${CHEM_EXTRA:-}"
# kl midpoint -1 with slope 16: the weight is KL * sigmoid(16) from the first step (no re-annealing)
bash "$(dirname "$0")/chem_job.sh" finetune "${MINUTES:-4}" --config "$INIT/config.json" --init-from "$INIT" \
  --kl-schedule budget --kl-midpoint -1 --kl-slope 16 --kl-max "${KL:-0.03}" --lr "${LR:-3e-4}" \
  --lr-schedule budget --lr-decay-start 0 --lr-final 0.05 --seed "${SEED:-1}" ${extra[@]+"${extra[@]}"}
cat "$OUT/finetune/train.json" "$OUT/finetune/evaluate_nordkit.json"
