"""Automatic chemical design: a SMILES variational autoencoder with a jointly trained property
predictor (Gómez-Bombarelli et al., https://arxiv.org/abs/1610.02415).

- :mod:`~metashot.chem.smiles`     vocabularies (char / regex / SELFIES), input validation
- :mod:`~metashot.chem.functional` reparameterisation, KL, annealing, losses, lerp/slerp: pure
- :mod:`~metashot.chem.vae`        :class:`SmilesVAE` (conv encoder, GRU decoder, property MLP)
- :mod:`~metashot.chem.properties` logP, QED, SAS, 5*QED - SAS (RDKit)
- :mod:`~metashot.chem.latent`     encode/decode, prior samples, perturb, interpolate, optimize
- :mod:`~metashot.chem.metrics`    validity, uniqueness, novelty, reconstruction
- :mod:`~metashot.chem.train` / :mod:`~metashot.chem.evaluate` / :mod:`~metashot.chem.cli`

RDKit is only imported by the functions that need it, so training works without it.
"""

from metashot.chem.config import PRESETS, TrainConfig, VAEConfig, list_presets
from metashot.chem.smiles import SmilesVocab
from metashot.chem.vae import SmilesVAE, VAEOutput

__all__ = ["PRESETS", "SmilesVAE", "SmilesVocab", "TrainConfig", "VAEConfig", "VAEOutput", "list_presets"]
