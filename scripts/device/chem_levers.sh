#!/usr/bin/env bash
# One GPU lease (session 9) spent on the paper-size SMILES VAE's open goals (#5: reconstruction >= 76%,
# prior validity >= 80%) and on the learned optimizer's missing GPU speed figure (#4: <= 10x Adam):
#   1. benchmarks/optim_speed.py --device cuda, alone on the idle GPU (about a minute);
#   2. four chem trainings at once (scripts/device/chem_job.sh), each for $MINUTES, testing two levers:
#      - the KL weight, continuing the committed checkpoints/chem-vae-zinc (59 epochs at KL 0.03) with a
#        warm restart at KL 0.03 (more of the same) and at KL 0.06 (more pressure towards the prior);
#      - the representation at paper size: multi-character SMILES tokens (`Cl`, `Br`, `[nH]`: shorter
#        sequences) with per-molecule encoder normalisation (the reduced CPU recipe that reached
#        72.6-75.7% reconstruction), from scratch, at KL 0.03 and 0.06.
#
#   OUT=/folder MINUTES=7 METASHOT_DATA=.devdata bash scripts/device/chem_levers.sh
# CPU smoke test:
#   OUT=/tmp/o MINUTES=0.2 DEVICE=cpu SKIP_BENCH=1 CHEM_EXTRA="--max-molecules 2000" \
#     CHEM_EVAL="--molecules 10 --decodes 2 --prior-samples 10" METASHOT_DATA=../shared/data \
#     bash scripts/device/chem_levers.sh
# Writes $OUT/summary.txt, $OUT/optim_speed_cuda.json and $OUT/results.tgz.part-* (<= 15 MB each).
# Afterwards, here: mkdir x && cat OUT/results.tgz.part-* | tar -C x -xzf -
set -u
# shellcheck source=scripts/device/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
driver_setup levers 7  # OUT required; root, MINUTES, DEVICE, PY, work; machine_info in $work

if [ -z "${SKIP_BENCH:-}" ]; then
  PYTHONPATH="$root/src" timeout 90 "$PY" benchmarks/optim_speed.py --device "$DEVICE" --repeats 20 --warmup 5 \
    --json "$OUT/optim_speed_cuda.json" > "$work/optim_speed.log" 2>&1
  cat "$work/optim_speed.log"
fi

ck=checkpoints/chem-vae-zinc
# kl midpoint -1 with slope 16: the weight is KL * sigmoid(16) from the first step (no re-annealing)
cont=(--config "$ck/config.json" --init-from "$ck" --kl-schedule budget --kl-midpoint -1 --kl-slope 16
      --lr 3e-4 --lr-schedule budget --lr-decay-start 0 --lr-final 0.05 --seed 2)
fresh=(--preset paper-fast --tokenizer regex --encoder-norm layer --lr-schedule budget --lr-decay-start 0.5
       --lr-final 0.05 --seed 0)
read -r -a extra <<< "${CHEM_EXTRA:-}"
job() { OUT="$work" bash scripts/device/chem_job.sh "$@" ${extra[@]+"${extra[@]}"}; }
pids=()
job cont-kl0.03 "$MINUTES" "${cont[@]}" --kl-max 0.03 & pids+=($!)
job cont-kl0.06 "$MINUTES" "${cont[@]}" --kl-max 0.06 & pids+=($!)
job regex-kl0.03 "$MINUTES" "${fresh[@]}" --kl-max 0.03 & pids+=($!)
job regex-kl0.06 "$MINUTES" "${fresh[@]}" --kl-max 0.06 & pids+=($!)
wait "${pids[@]}"
chem_summary "$work" > "$OUT/summary.txt" 2>&1
cat "$OUT/summary.txt"
pack "$work" "$OUT"
