"""Automatic chemical design: a SMILES variational autoencoder with a jointly trained property
predictor (Gómez-Bombarelli et al., https://arxiv.org/abs/1610.02415).

- :mod:`~metashot.chem.smiles`     vocabularies (char / regex / SELFIES), input validation
- :mod:`~metashot.chem.functional` reparameterisation, KL, annealing, losses, lerp/slerp: pure
- :mod:`~metashot.chem.vae`        :class:`SmilesVAE` (conv encoder, GRU decoder, property MLP)
- :mod:`~metashot.chem.properties` logP, QED, SAS, 5*QED - SAS (RDKit)
- :mod:`~metashot.chem.latent`     encode/decode, prior samples, perturb, interpolate
- :mod:`~metashot.chem.beam`       beam-search decoding
- :mod:`~metashot.chem.refine`     refining encodings by gradient ascent on each molecule's ELBO
- :mod:`~metashot.chem.optimize`   Bayesian optimisation (BoTorch) and gradient ascent in the latent space
- :mod:`~metashot.chem.metrics`    validity, uniqueness, novelty, reconstruction
- :mod:`~metashot.chem.train` / :mod:`~metashot.chem.evaluate` / :mod:`~metashot.chem.cli`

RDKit, SELFIES and BoTorch are only imported by the functions that need them, so training works
without them (the GPU machine has no RDKit).

Example:
    >>> from metashot.chem import latent, load_model
    >>> model, vocab, config = load_model("checkpoints/chem-vae-zinc")      # doctest: +SKIP
    >>> enc = latent.encode(model, vocab, ["CCO", "c1ccccc1"])             # doctest: +SKIP
    >>> latent.decode(model, vocab, latent.interpolate(enc.mu[0], enc.mu[1], 5))  # doctest: +SKIP
"""

from metashot.chem import latent
from metashot.chem.config import PRESETS, TrainConfig, VAEConfig, list_presets
from metashot.chem.metrics import evaluate_samples
from metashot.chem.smiles import SmilesVocab
from metashot.chem.train import load_model
from metashot.chem.vae import SmilesVAE, VAEOutput

__all__ = [
    "PRESETS",
    "SmilesVAE",
    "SmilesVocab",
    "TrainConfig",
    "VAEConfig",
    "VAEOutput",
    "evaluate_samples",
    "latent",
    "list_presets",
    "load_model",
]
