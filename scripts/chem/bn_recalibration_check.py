"""Held-out token accuracy and greedy reconstruction of a chem checkpoint with its stored batch-norm
statistics and after recomputing them ("precise BN") on random or length-bucketed training batches.

    python scripts/chem/bn_recalibration_check.py RUN_OR_CHECKPOINT [--molecules 300]

The figures in docs/chem.md ("Batch norm and length buckets") came from this script (300 molecules):
the session-2 reduced run `kl001` (not committed; results/chem/reduced-session2) and
checkpoints/chem-vae-zinc-kl005.
"""

from __future__ import annotations

import copy

import torch
from _held_out import load_held_out
from torch.optim.swa_utils import update_bn

from metashot.chem.data import batch_order
from metashot.chem.train import _Encoder, _eval_counts


def main() -> None:
    model, _vocab, data, x = load_held_out(__doc__.splitlines()[0], default_molecules=300)
    n = len(x)

    def report(m: torch.nn.Module, tag: str) -> None:
        (correct, total, *_rest, exact), mae = _eval_counts(m, x, data.test_properties[:n], torch.device("cpu"), 500)
        print(f"{tag}: token accuracy (all positions) {correct / total:.4f}, exact {exact / n:.4f}, "
              f"MAE {[round(v, 3) for v in (mae / n).tolist()]}", flush=True)

    report(model, "stored running statistics")
    lengths = (data.train_ids != 0).sum(1)
    for bucket in (False, True):
        m = copy.deepcopy(model)
        order = batch_order(lengths, 128, seed=123, bucket=bucket)
        batches = [data.train_ids[order[b * 128 : (b + 1) * 128]].long() for b in range(100)]
        update_bn(batches, _Encoder(m))  # reset, then the cumulative average over the batches
        report(m, f"recomputed on 100 {'length-bucketed' if bucket else 'random'} batches of 128")


if __name__ == "__main__":
    main()
