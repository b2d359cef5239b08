#!/usr/bin/env bash
# One GPU lease spent on the two open accuracy goals that the CPU cannot reach (session 8):
#   * the paper-size SMILES VAE (#5) at two final KL weights, each trained for $MINUTES with the KL
#     weight and the cosine learning-rate decay both following the wall-clock budget (so the rate
#     has decayed when time is up, however many epochs fit), then exported (fp16) and the
#     evaluation set decoded on the GPU (scored later with RDKit, which the GPU machine lacks);
#   * Matching Networks without FCE (#3), 1-shot and 5-shot models on 20-way episodes, with longer
#     schedules than the first lease's (that run shared the GPU with nine jobs and was cut short).
# All four trainings run at once on the one GPU.
#
# Usage, from the repository root on the GPU machine (the data folder has shared/data's layout):
#   OUT=/some/folder MINUTES=7 METASHOT_DATA=.devdata bash scripts/device/long_runs.sh
# Smoke test on a CPU (minutes and molecules tiny):
#   OUT=/tmp/o MINUTES=0.3 DEVICE=cpu CHEM_EXTRA="--max-molecules 3000" FEWSHOT_STEPS=40 \
#     CHEM_EVAL="--molecules 20 --decodes 2 --prior-samples 20" \
#     METASHOT_DATA=../shared/data bash scripts/device/long_runs.sh
# Writes $OUT/results.tgz.part-* (<= 15 MB each: chem exports, decodes and logs; fewshot run folders
# with optimizer state, so a run that stops early can be resumed exactly) and $OUT/summary.txt.
# Afterwards, here: mkdir x && cat OUT/results.tgz.part-* | tar -C x -xzf -   (then see the READMEs).
set -u
root=$(pwd)
export PYTHONPATH="$root/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export METASHOT_DATA="$(cd "${METASHOT_DATA:?set METASHOT_DATA}" && pwd)"
: "${OUT:?set OUT}"
MINUTES="${MINUTES:-7}"
DEVICE="${DEVICE:-cuda}"
PY="${PYTHON:-python3}"
KLS="${CHEM_KLS:-0.005 0.03}"
FEWSHOT_STEPS="${FEWSHOT_STEPS:-16000}"
work=$(mktemp -d /tmp/metashot-long.XXXX)
# shellcheck source=scripts/device/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
machine_info "$work/machine.txt"

chem() {  # $1 = final KL weight; writes $work/chem-kl$1/ (scripts/device/chem_job.sh)
  # shellcheck disable=SC2086  # CHEM_EXTRA is word-split on purpose
  OUT="$work" DEVICE="$DEVICE" PYTHON="$PY" bash scripts/device/chem_job.sh "chem-kl$1" "$MINUTES" \
    --preset paper-fast --kl-max "$1" --lr-schedule budget --lr-decay-start 0.5 --lr-final 0.05 --seed 0 ${CHEM_EXTRA:-}
}

fewshot() {  # $1 = shot
  local shot=$1 name="matching-$1shot" run="$work/runs/matching-$1shot"
  local eps=1; [ "$shot" = 1 ] && eps=2
  local cmd=("$PY" -m metashot.cli fewshot train --method matching --way 20 --shot "$shot" --query 15
             --episodes-per-step "$eps" --dataset omniglot --out "$run" --steps "$FEWSHOT_STEPS"
             --lr-decay-every $(( FEWSHOT_STEPS / 4 )) --checkpoint-every 1000 --log-every 100
             --max-minutes "$MINUTES" --device "$DEVICE" --seed 0 --no-progress --json)
  echo "${cmd[*]}" > "$work/$name.command"
  "${cmd[@]}" > "$work/$name.json" 2> "$work/$name.log"
  echo "$name done: $(cat "$work/$name.json")"
}

mkdir -p "$work/runs"
pids=()
for kl in $KLS; do chem "$kl" & pids+=($!); done
for shot in 1 5; do fewshot "$shot" & pids+=($!); done
wait "${pids[@]}"
{
  cat "$work/machine.txt"
  for kl in $KLS; do echo "== chem-kl$kl"; cat "$work/chem-kl$kl/train.json"; tail -n 3 "$work/chem-kl$kl/train.log"; cat "$work/chem-kl$kl/evaluate_nordkit.json"; done
  for shot in 1 5; do echo "== matching-${shot}shot"; cat "$work/matching-${shot}shot.json"; tail -n 3 "$work/matching-${shot}shot.log"; done
} > "$OUT/summary.txt" 2>&1
cat "$OUT/summary.txt"
pack "$work" "$OUT"
