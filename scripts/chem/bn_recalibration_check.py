"""Held-out token accuracy and greedy reconstruction of a chem checkpoint with its stored batch-norm
statistics and after recomputing them ("precise BN") on random or length-bucketed training batches.

    python scripts/chem/bn_recalibration_check.py RUN_OR_CHECKPOINT [--molecules 300]

The figures in docs/chem.md ("Batch norm and length buckets") came from this script (300 molecules):
the session-2 reduced run `kl001` (not committed; results/chem/reduced-session2) and
checkpoints/chem-vae-zinc-kl005.
"""

from __future__ import annotations

import argparse
import copy
import os

import torch

from metashot.chem.data import batch_order, load_molecule_data
from metashot.chem.train import _eval_counts, load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--molecules", type=int, default=300)
    parser.add_argument("--data-dir", default=os.environ.get("METASHOT_DATA"))
    args = parser.parse_args()
    model, vocab, cfg = load_model(args.checkpoint)
    data = load_molecule_data(cfg, args.data_dir, vocab=vocab)
    x = data.test_ids[: args.molecules]
    n = len(x)

    def report(m: torch.nn.Module, tag: str) -> None:
        (correct, total, *_rest, exact), mae = _eval_counts(m, x, data.test_properties[:n], torch.device("cpu"), 500)
        print(f"{tag}: token accuracy (all positions) {correct / total:.4f}, exact {exact / n:.4f}, "
              f"MAE {[round(v, 3) for v in (mae / n).tolist()]}", flush=True)

    report(model, "stored running statistics")
    lengths = (data.train_ids != 0).sum(1)
    for bucket in (False, True):
        m = copy.deepcopy(model)
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm1d):
                mod.reset_running_stats()
                mod.momentum = None  # cumulative average
        m.train()
        order = batch_order(lengths, 128, seed=123, bucket=bucket)
        with torch.no_grad():
            for b in range(100):
                m.encode(data.train_ids[order[b * 128 : (b + 1) * 128]].long())
        report(m, f"recomputed on 100 {'length-bucketed' if bucket else 'random'} batches of 128")


if __name__ == "__main__":
    main()
