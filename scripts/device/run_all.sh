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
    (cd "$root" && OUT="$work" timeout --signal=INT --kill-after=60 "$(( ${MINUTES%.*} * 60 + 150 ))" \
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
ls -la "$OUT"
