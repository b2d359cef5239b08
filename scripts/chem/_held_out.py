"""Shared start of the chem diagnostics: parse ``CHECKPOINT [--molecules N] [--data-dir DIR]``, load
the model and its held-out molecules (the same split as training)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from torch import Tensor

from metashot.chem.data import load_molecule_data
from metashot.chem.train import load_model


def load_held_out(description: str, default_molecules: int) -> tuple[Any, Any, Any, Tensor]:
    """``(model, vocab, data, ids)``: ``ids`` ``(n, max_length)`` long, the first ``--molecules`` held-out rows."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("checkpoint")
    parser.add_argument("--molecules", type=int, default=default_molecules)
    parser.add_argument("--data-dir", default=os.environ.get("METASHOT_DATA"))
    args = parser.parse_args()
    model, vocab, cfg = load_model(args.checkpoint)
    data = load_molecule_data(cfg, args.data_dir, vocab=vocab)
    return model, vocab, data, data.test_ids[: args.molecules].long()
