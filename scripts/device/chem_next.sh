#!/usr/bin/env bash
# The next GPU lease, prepared in session 9 (issue 5 first, then issue 4's GPU speed figure):
#   1. scripts/device/optim_speed.sh: LearnedOptimizer vs Adam on the GPU in three layouts (fused,
#      per tensor, fused + torch.compile), alone on the idle GPU (~4 minutes; SKIP_BENCH=1 skips it);
#   2. four chem trainings at once (scripts/device/chem_job.sh), $MINUTES each:
#      - `next-kl0.1`, `next-kl0.2`: continue the committed checkpoints/chem-vae-zinc (105 epochs, final KL
#        weight 0.1) at KL 0.1 and 0.2: session 9 found that raising the weight lifted validity (56 -> 70%)
#        and greedy reconstruction (56 -> 61%) together;
#      - `enc-only-kl0.1` (session 14): the committed model's encoder (and property head) trained on with the
#        decoder frozen (--train-only encoder), for as many epochs as the budget gives: refined encodings
#        showed the reconstruction gap is the encoder's (results/chem/refine); 1.9 CPU epochs of this
#        raised greedy reconstruction only a little (results/chem/encoder-finetune);
#      - `regex-next-kl0.1`: continue checkpoints/chem-vae-zinc-regex (multi-character tokens, 27 epochs,
#        74.5% valid / 43.4% reconstructed) at KL 0.1.
#
#   OUT=/folder MINUTES=6 METASHOT_DATA=.devdata bash scripts/device/chem_next.sh
# CPU smoke test:
#   OUT=/tmp/o MINUTES=0.2 DEVICE=cpu SKIP_BENCH=1 CHEM_EXTRA="--max-molecules 2000" \
#     CHEM_EVAL="--molecules 10 --decodes 2 --prior-samples 10" METASHOT_DATA=../shared/data \
#     bash scripts/device/chem_next.sh
# Writes $OUT/summary.txt, $OUT/optim_speed_cuda_*.json and $OUT/results.tgz.part-* (<= 15 MB each).
# Before the call: the tracked tree must fit the device tool's 64 MiB with the carried data (see
# docs/chem.md, "GPU runs"). Afterwards, here: mkdir x && cat OUT/results.tgz.part-* | tar -C x -xzf -
# and score each run: metashot chem evaluate --checkpoint x/RUN/model --from-decodes x/RUN/decodes.json --json
# (and x/RUN/decodes_constrained.json, x/RUN/decodes_beam.json: beam search of width 10, session 13).
# CPU smoke test passed in session 13 (4 min 12 s, beside two other jobs; needs .venv/bin on PATH).
set -u
# shellcheck source=scripts/device/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
driver_setup next 6  # OUT required; root, MINUTES, DEVICE, PY, work; machine_info in $work
[ -z "${SKIP_BENCH:-}" ] && OUT="$OUT" PYTHON="$PY" bash scripts/device/optim_speed.sh

# kl midpoint -1 with slope 16: the weight is KL * sigmoid(16) from the first step (no re-annealing)
cont() {  # cont CHECKPOINT SEED: flags that continue CHECKPOINT with a fresh Adam and a warm restart
  echo --config "$1/config.json" --init-from "$1" --kl-schedule budget --kl-midpoint -1 --kl-slope 16 \
    --lr 2e-4 --lr-schedule budget --lr-decay-start 0 --lr-final 0.05 --seed "$2"
}
read -r -a extra <<< "${CHEM_EXTRA:-}"
job() { OUT="$work" PYTHON="$PY" bash scripts/device/chem_job.sh "$@" ${extra[@]+"${extra[@]}"}; }
main=checkpoints/chem-vae-zinc regex=checkpoints/chem-vae-zinc-regex
pids=()
# shellcheck disable=SC2046  # cont's output is word-split on purpose (paths have no spaces)
{
  job next-kl0.1 "$MINUTES" $(cont "$main" 4) --kl-max 0.1 & pids+=($!)
  job next-kl0.2 "$MINUTES" $(cont "$main" 4) --kl-max 0.2 & pids+=($!)
  job enc-only-kl0.1 "$MINUTES" $(cont "$main" 5) --kl-max 0.1 --train-only encoder --lr 3e-4 & pids+=($!)
  job regex-next-kl0.1 "$MINUTES" $(cont "$regex" 4) --kl-max 0.1 & pids+=($!)
}
wait "${pids[@]}"
chem_summary "$work" > "$OUT/summary.txt" 2>&1
cat "$OUT/summary.txt"
pack "$work" "$OUT"
