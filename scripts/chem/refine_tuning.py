"""Choose ``--refine-steps``/``--refine-lr`` on held-out molecules that are *not* scored.

``metashot chem evaluate`` scores the first 1000 molecules of the test split; this script uses the
``--molecules`` after them (rows ``--skip`` onwards, default 1000), and prints one JSON line per
setting: greedy reconstruction from the refined means, the mean objective before/after, the fraction of
molecules whose objective went down, and the seconds it took.

    python scripts/chem/refine_tuning.py checkpoints/chem-vae-zinc --molecules 200 --steps 10,30,50,100 --lr 0.05
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

from metashot.chem import latent
from metashot.chem.data import load_split
from metashot.chem.evaluate import encodable_held_out
from metashot.chem.metrics import canonical_or_none
from metashot.chem.refine import refine_posterior
from metashot.chem.train import load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--molecules", type=int, default=200)
    parser.add_argument("--skip", type=int, default=1000, help="test-split rows scored by evaluate (not used here)")
    parser.add_argument("--steps", default="10,30,50,100", help="comma-separated step counts")
    parser.add_argument("--lr", default="0.05", help="comma-separated step sizes")
    parser.add_argument("--data-dir", default=os.environ.get("METASHOT_DATA"))
    args = parser.parse_args()
    model, vocab, cfg = load_model(args.checkpoint)
    _, test = load_split(cfg.dataset, cfg.test_fraction, args.data_dir)
    smiles, ids, _ = encodable_held_out(vocab, test.smiles, args.molecules, start=args.skip)  # as evaluate picks
    with torch.no_grad():
        mu, logvar = model.encode(ids)
    target = [canonical_or_none(s) for s in smiles]

    def reconstruction(points: torch.Tensor) -> float:
        decoded = latent.decode(model, vocab, points)
        return sum(a is not None and a == canonical_or_none(b) for a, b in zip(target, decoded)) / len(target)

    print(json.dumps({"checkpoint": args.checkpoint, "molecules": len(smiles), "rows_from": args.skip,
                      "kl_weight": cfg.kl_max, "steps": 0, "reconstruction": reconstruction(mu)}), flush=True)
    for lr in (float(x) for x in args.lr.split(",")):
        for steps in (int(x) for x in args.steps.split(",")):
            started = time.perf_counter()
            out = refine_posterior(model, ids, mu, logvar, steps=steps, lr=lr, kl_weight=cfg.kl_max)
            print(json.dumps({
                "lr": lr, "steps": steps, "reconstruction": reconstruction(out.mu),
                "loss_before": round(float(out.loss_before.mean()), 4), "loss_after": round(float(out.loss_after.mean()), 4),
                "improved": float((out.loss_after < out.loss_before).float().mean()),
                "seconds": round(time.perf_counter() - started, 1),
            }), flush=True)


if __name__ == "__main__":
    main()
