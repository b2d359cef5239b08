#!/usr/bin/env bash
# GPU speed of LearnedOptimizer.step() against torch.optim.Adam (#4: goal <= 10x Adam at 1M parameters),
# side by side in one run: fused (default, one LSTM call per param group per step), per tensor (fused=False,
# the layout of session 9's first GPU figure), the Adam-input optimizer (--preprocess adam --output-activation
# tanh, the inputs of checkpoints/l2l-mnist-mlp-mixed-adam-second-order) and fused + torch.compile. Only the
# fused variant measures every size and meta-training; the others measure the 1M-parameter models.
#
#   OUT=/folder bash scripts/device/optim_speed.sh        (about 4 minutes on a GPU: each measurement is a
#   fresh process; the compiled variant compiles in each and is timed at 1M parameters only)
# Writes $OUT/optim_speed_cuda_{fused,per_tensor,adam_inputs,compile}.json and $OUT/optim_speed_cuda.log.
set -u
: "${OUT:?set OUT}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
PY="${PYTHON:-python3}"
DEVICE="${DEVICE:-cuda}"
export PYTHONPATH="$root/src${PYTHONPATH:+:$PYTHONPATH}"
for variant in fused per_tensor adam_inputs compile; do
  case $variant in
    fused) flags=(--rounds 2) ;;
    per_tensor) flags=(--rounds 2 --per-tensor --sizes 1M,1M-200t --unrolls 0) ;;
    adam_inputs) flags=(--rounds 2 --preprocess adam --output-activation tanh --sizes 1M,1M-200t --unrolls 0) ;;
    compile) flags=(--rounds 1 --compile --warmup 3 --sizes 1M,1M-200t --unrolls 0) ;;
  esac
  echo "== $variant" >> "$OUT/optim_speed_cuda.log"
  timeout 120 "$PY" "$root/benchmarks/optim_speed.py" --device "$DEVICE" --repeats 20 "${flags[@]}" \
    --json "$OUT/optim_speed_cuda_$variant.json" >> "$OUT/optim_speed_cuda.log" 2>&1
done
cat "$OUT/optim_speed_cuda.log"
