"""metashot: four NIPS 2016 ideas made real and usable.

Subpackages, one per system, plus shared machinery:

- ``metashot.fewshot``  Matching Networks for one-shot learning (Vinyals et al. 2016)
- ``metashot.optim``    learned optimizers (Andrychowicz et al. 2016)
- ``metashot.chem``     SMILES variational autoencoder (Gómez-Bombarelli et al. 2016)
- ``metashot.rnn``      Phased LSTM (Neil et al. 2016)
- ``metashot.data``     dataset registry, downloads, loaders
- ``metashot.training`` checkpoints, seeding, logging, device choice

Subpackages are imported lazily (``import metashot as ms; ms.rnn.PhasedLSTM``) so that importing
one system never pulls in another's heavy dependencies (RDKit for chem).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.2.0"

_SUBPACKAGES = ("fewshot", "optim", "chem", "rnn", "data", "training", "reproduce")


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"metashot.{name}")
    raise AttributeError(f"module 'metashot' has no attribute {name!r}")
