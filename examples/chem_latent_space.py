"""Explore a SMILES VAE's latent space: encode, interpolate, perturb, sample, optimise.

    python examples/chem_latent_space.py --checkpoint checkpoints/chem-vae-zinc
    python examples/chem_latent_space.py --cheap          # trains a tiny model for a few seconds first

Needs RDKit (``pip install 'metashot[chem]'``) and the ZINC-250k files under $METASHOT_DATA.
"""

from __future__ import annotations

import argparse
import tempfile

import torch

from metashot.chem import latent
from metashot.chem.config import preset
from metashot.chem.metrics import evaluate_samples
from metashot.chem.optimize import optimize_property
from metashot.chem.train import load_model, train


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default="checkpoints/chem-vae-zinc")
    parser.add_argument("--cheap", action="store_true", help="train a tiny model (seconds) instead of loading one")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    checkpoint = args.checkpoint
    if args.cheap:
        checkpoint = tempfile.mkdtemp(prefix="chem-example-")
        train(preset("tiny", max_molecules=500, eval_every=1000), checkpoint, data_dir=args.data_dir, device="cpu",
              max_steps=20, show_progress=False)
    model, vocab, _ = load_model(checkpoint)
    gen = torch.Generator().manual_seed(0)

    # 1. encode two molecules (bad inputs are reported, not raised) and walk between them
    enc = latent.encode(model, vocab, ["CC(=O)Nc1ccc(O)cc1", "CC(C)Cc1ccc(C(C)C(=O)O)cc1", "C1CC"])
    print("rejected:", [(b.smiles, b.reason) for b in enc.bad])
    path = latent.interpolate(enc.mu[0], enc.mu[1], steps=6, method="spherical")
    for t, s in zip(torch.linspace(0, 1, 6).tolist(), latent.decode(model, vocab, path)):
        print(f"t={t:.2f}  {s}")

    # 2. neighbours of paracetamol: decode points at radius 1 several times, keep distinct valid ones
    around = latent.decode_many(model, vocab, latent.perturb(enc.mu[0], 1.0, 5, gen), times=4, generator=gen)
    print("neighbours:", around[:5])

    # 3. sample the prior and score the samples
    samples = latent.decode(model, vocab, latent.sample_prior(50, model.config.latent_dim, gen))
    scores = evaluate_samples(samples)
    print("prior samples:", scores)

    # 4. a short gradient-ascent run on 5*QED - SAS with the property predictor
    best = optimize_property(model, vocab, ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "CCN(CC)CC"], method="gradient",
                             iterations=2, batch=2, generator=gen)
    print("best found:", best.best[:3])
    return {"rejected": len(enc.bad), "prior": scores, "best": best.best}


if __name__ == "__main__":
    main()
