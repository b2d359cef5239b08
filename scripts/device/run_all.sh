#!/usr/bin/env bash
# One GPU lease, all systems: run every scripts/device/<system>.sh concurrently on the one GPU
# machine, each within $MINUTES of wall time, then pack everything they wrote into $OUT as
# <=15 MB tarball parts (the device tool brings back at most 8 files of 16 MiB).
#
# Usage (from the repository root, on the GPU machine):
#   OUT=/some/folder MINUTES=7 METASHOT_DATA=.devdata bash scripts/device/run_all.sh [systems...]
# The data folder has the layout of shared/data (only the files the systems need).
set -u
root=$(pwd)
export PYTHONPATH="$root/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export METASHOT_DATA="$(cd "${METASHOT_DATA:-$root/.devdata}" && pwd)"
export MINUTES="${MINUTES:-7}"
systems=("$@")
[ ${#systems[@]} -eq 0 ] && systems=(chem fewshot optim rnn)
work=$(mktemp -d /tmp/metashot-device.XXXX)
{
  date -u +%FT%TZ
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
  python3 -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.cuda.is_available())"
  nproc
} > "$work/machine.txt" 2>&1
cat "$work/machine.txt"
pids=()
for s in "${systems[@]}"; do
  if [ -f "scripts/device/$s.sh" ]; then
    mkdir -p "$work/$s"
    # The GPU goes to chem (first priority) and fewshot; the small recurrent and optimizer
    # trainings run on the machine's CPU cores, niced so they never starve the GPU feeders
    # (several processes on one GPU time-slice it, so fewer GPU processes means more for chem).
    case $s in
      rnn) env_extra=(DEVICE=cpu); nice_level=10 ;;
      optim) env_extra=(OPTIM_DEVICE=cpu); nice_level=10 ;;
      *) env_extra=(); nice_level=0 ;;
    esac
    (cd "$root" && env OUT="$work" "${env_extra[@]}" nice -n "$nice_level" \
       timeout --signal=INT --kill-after=60 "$(( ${MINUTES%.*} * 60 + 150 ))" \
       bash "scripts/device/$s.sh" > "$work/$s.log" 2>&1; echo "exit $?" >> "$work/$s.log") &
    pids+=($!)
    echo "started $s (pid $!)"
  else
    echo "no scripts/device/$s.sh: skipped"
  fi
done
wait "${pids[@]}"
for s in "${systems[@]}"; do echo "=== $s (last lines)"; tail -n 15 "$work/$s.log" 2>/dev/null; done
tar -C "$work" -czf - . | split -b 15m - "$OUT/results.tgz.part-"
# GPU speed figures, measured alone on the idle GPU after the trainings (each bounded in time).
if [ -z "${SKIP_BENCH:-}" ] && python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    timeout 45 python3 benchmarks/plstm_speed.py --device cuda --backends eager fused --repeats 5 --warmup 2 \
    --json-out "$OUT/plstm_speed_cuda.json" > "$work/plstm.log" 2>&1
  timeout 45 python3 benchmarks/optim_speed.py --device cuda --json "$OUT/optim_speed_cuda.json" \
    > "$work/optim.log" 2>&1
  timeout 45 python3 benchmarks/fewshot_speed.py --device cuda --cases ours ours-fce ours-fce-batch8 \
    --data-dir "$METASHOT_DATA" --out "$OUT/fewshot_speed_cuda.json" > "$work/fewshot.log" 2>&1
  for f in "$work"/{plstm,optim,fewshot}.log; do echo "=== $f"; tail -n 12 "$f"; done
fi
ls -la "$OUT"
