#!/bin/bash
# Score one meta-trained optimizer on the paper's MNIST rows: the MLP it was trained on (100 steps), and
# the generalisation tests: 200 steps, 40 hidden units, two hidden layers, ReLU. Every baseline is tuned
# afresh on validation problems (the same seeds and code as the main table, so the numbers match it).
#
#   scripts/optim/generalisation.sh CHECKPOINT PREFIX OUTDIR [RUNS] [ROWS]
#
# writes OUTDIR/PREFIX-<task>-<steps>.json and .png; RUNS test problems (default 20, the protocol);
# ROWS: a subset of "mlp-100 mlp-200 wide-100 deep-100 relu-100" (default all). One CPU thread per
# process is the fastest on this 2-core machine (set OMP_NUM_THREADS=1 outside).
set -euo pipefail
CHECKPOINT=$1 PREFIX=$2 OUTDIR=$3 RUNS=${4:-20}
ROWS=${5:-"mlp-100 mlp-200 wide-100 deep-100 relu-100"}
METASHOT=${METASHOT:-metashot}
mkdir -p "$OUTDIR"
for row in $ROWS; do
  case $row in
    mlp-100) task=mnist-mlp steps=100 ;;
    mlp-200) task=mnist-mlp steps=200 ;;
    wide-100) task=mnist-mlp-wide steps=100 ;;
    deep-100) task=mnist-mlp-deep steps=100 ;;
    relu-100) task=mnist-mlp-relu steps=100 ;;
    *) echo "unknown row $row (use mlp-100 mlp-200 wide-100 deep-100 relu-100)" >&2; exit 2 ;;
  esac
  suffix=$([ "$RUNS" = 20 ] && echo "" || echo "-runs$RUNS")
  out="$OUTDIR/$PREFIX-$task-$steps$suffix"
  echo "== $row: $out.json"
  $METASHOT optim compare --checkpoint "$CHECKPOINT" --task $task --steps $steps --runs "$RUNS" --seed 0 \
    --device cpu --out "$out.json" --plot "$out.png"
done
