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
