#!/usr/bin/env bash
# Before a `run` on the GPU machine: the device tool copies the working tree plus carried data, 64 MiB
# in all, and the tracked tree is larger. This deletes (locally, uncommitted) the big tracked files that
# no device script reads, prints the tree's size, and reminds how to restore them afterwards.
#
#   bash scripts/device/slim_tree.sh        # commit your work first
#   ... run the device call (carry e.g. .devdata/zinc250k) ...
#   git checkout -- .                       # restores the deleted files
set -eu
cd "$(dirname "$0")/../.."
if ! git diff --quiet || ! git diff --cached --quiet; then
  echo "slim_tree: commit or stash your changes first (restoring uses git checkout -- .)" >&2
  exit 1
fi
rm -f checkpoints/l2l-cifar10-conv*/checkpoint-*/carry.safetensors \
      checkpoints/chem-vae-zinc-kl005/model.safetensors \
      checkpoints/bnlstm-*/checkpoint-*/model.safetensors checkpoints/omniglot-*/model.safetensors \
      results/chem/*decodes.json results/chem/*/*decodes.json results/chem/*/*decodes*.json.gz
bytes=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
echo "tracked files present: $((bytes / 1024 / 1024)) MiB (limit 64 MiB with the carried data)"
echo "restore afterwards with: git checkout -- ."
