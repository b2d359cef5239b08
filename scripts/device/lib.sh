# shellcheck shell=bash
# Helpers shared by the scripts/device/*.sh drivers (sourced, not run). PY is the Python to use.

# machine_info FILE: date, GPU, Python and torch, CPU count and commit into FILE, and print them.
machine_info() {
  {
    date -u +%FT%TZ
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
    "${PY:-python3}" -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.cuda.is_available())"
    echo "cpus $(nproc)"
    git rev-parse --short HEAD 2>/dev/null || true
  } > "$1" 2>&1
  cat "$1"
}

# driver_setup NAME MINUTES: the common start of a driver: require OUT, cd to the repository root (root),
# default MINUTES, DEVICE (exported; cuda) and PY, make the work folder $work and record machine_info there.
driver_setup() {
  : "${OUT:?set OUT}"
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
  cd "$root" || exit 1
  MINUTES="${MINUTES:-$2}"
  export DEVICE="${DEVICE:-cuda}"
  PY="${PYTHON:-python3}"
  work=$(mktemp -d "/tmp/metashot-$1.XXXX")
  machine_info "$work/machine.txt"
}

# chem_summary WORK: machine.txt, then each chem_job.sh run folder's summary, evaluation and log tail.
chem_summary() {
  cat "$1/machine.txt"
  local d
  for d in "$1"/*/; do
    [ -f "$d/command.txt" ] || continue
    echo "== $(basename "$d")"; cat "$d/train.json" 2>/dev/null; tail -n 2 "$d/train.log"
    cat "$d/evaluate_nordkit.json" 2>/dev/null
  done
}

# pack WORK OUT: WORK as a gzipped tarball in <= 15 MB parts OUT/results.tgz.part-* (the device tool
# brings back at most 8 files of 16 MiB each), then list OUT.
pack() {
  tar -C "$1" -czf - . | split -b 15m - "$2/results.tgz.part-"
  ls -la "$2"
}
