#!/usr/bin/env bash
# One chem VAE job on the GPU machine: train for MINUTES of wall time, export the fp16 weights,
# then decode the evaluation protocol on the same device (scored afterwards with RDKit, which the
# GPU machine lacks). The building block of scripts/device/{chem_levers,chem_finetune,long_runs}.sh;
# several jobs can run at once (each writes only to $OUT/NAME).
#
#   OUT=/folder METASHOT_DATA=.devdata bash scripts/device/chem_job.sh NAME MINUTES [chem train flags...]
#
# The flags go to `metashot chem train` as given (e.g. --preset paper-fast --kl-max 0.03, or
# --config CKPT/config.json --init-from CKPT); --max-minutes, --device, --out, --no-progress and
# --json are added here. Env: DEVICE (default cuda), PYTHON (python3), CHEM_EVAL (word-split
# `chem evaluate` flags; default: the full protocol, 1000 molecules x 10 decodes, 5000 prior samples),
# CHEM_CONSTRAINED (1, default: also decode with --constrained into decodes_constrained.json; 0: skip),
# CHEM_BEAM (10, default: also decode by beam search of that width into decodes_beam.json; 0: skip).
# Writes $OUT/NAME/: command.txt, config.json, train.json, train.log, metrics.jsonl, model/ (fp16 export:
# model.safetensors, config.json, state.json), decodes.json, evaluate_nordkit.json, and (CHEM_CONSTRAINED=1)
# decodes_constrained.json, evaluate_constrained_nordkit.json, and (CHEM_BEAM) decodes_beam.json, evaluate_beam_nordkit.json.
# Afterwards, here: metashot chem evaluate --checkpoint NAME/model --from-decodes NAME/decodes.json --json
set -u
name="${1:?usage: chem_job.sh NAME MINUTES [chem train flags...]}"
minutes="${2:?usage: chem_job.sh NAME MINUTES [chem train flags...]}"
shift 2
: "${OUT:?set OUT}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
export PYTHONPATH="$root/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export METASHOT_DATA="$(cd "${METASHOT_DATA:?set METASHOT_DATA}" && pwd)"
PY="${PYTHON:-python3}"
DEVICE="${DEVICE:-cuda}"
dest="$OUT/$name"
run="$(mktemp -d "${TMPDIR:-/tmp}/metashot-chem-$name.XXXX")/run"
mkdir -p "$dest"
cmd=("$PY" -m metashot.cli chem train --dataset zinc250k "$@" --max-minutes "$minutes" --device "$DEVICE"
     --no-progress --json --out "$run")
echo "${cmd[*]}" > "$dest/command.txt"
if ! "${cmd[@]}" > "$dest/train.json" 2> "$dest/train.log"; then
  echo "$name: training failed: $(tail -n 3 "$dest/train.log")" >&2
  exit 1
fi
cp "$run/metrics.jsonl" "$run/config.json" "$dest/"
"$PY" -c "from metashot.chem.train import export_weights; export_weights('$run', '$dest/model')" 2>> "$dest/train.log"
# shellcheck disable=SC2086  # CHEM_EVAL is word-split on purpose
"$PY" -m metashot.cli chem evaluate --checkpoint "$run" --device "$DEVICE" --json --seed 0 \
  ${CHEM_EVAL:---molecules 1000 --decodes 10 --prior-samples 5000} --save-decodes "$dest/decodes.json" \
  > "$dest/evaluate_nordkit.json" 2> "$dest/evaluate.log"
if [ "${CHEM_CONSTRAINED:-1}" = "1" ]; then  # the same protocol with syntax-constrained decoding (seconds on a GPU)
  # shellcheck disable=SC2086
  "$PY" -m metashot.cli chem evaluate --checkpoint "$run" --device "$DEVICE" --json --seed 0 --constrained \
    ${CHEM_EVAL:---molecules 1000 --decodes 10 --prior-samples 5000} --save-decodes "$dest/decodes_constrained.json" \
    > "$dest/evaluate_constrained_nordkit.json" 2>> "$dest/evaluate.log"
fi
if [ "${CHEM_BEAM:-10}" != "0" ]; then  # the same protocol decoded by beam search (~10 s on a GPU); the beams are
  # saved so that the validity-checked metrics can be scored here too
  # shellcheck disable=SC2086
  "$PY" -m metashot.cli chem evaluate --checkpoint "$run" --device "$DEVICE" --json --seed 0 --beam "${CHEM_BEAM:-10}" \
    ${CHEM_EVAL:---molecules 1000 --decodes 10 --prior-samples 5000} --save-decodes "$dest/decodes_beam.json" \
    > "$dest/evaluate_beam_nordkit.json" 2>> "$dest/evaluate.log"
fi
rm -rf "$(dirname "$run")"  # the optimizer state (~50 MB) stays behind: the export is what is kept
echo "$name done: $(tail -c 300 "$dest/train.json" | tr '\n' ' ')" >&2
