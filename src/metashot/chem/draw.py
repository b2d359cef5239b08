"""Molecule grid images drawn with RDKit (``--image grid.png``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from metashot.errors import UsageError

__all__ = ["draw_grid"]


def draw_grid(
    smiles: Sequence[str | None],
    path: str | os.PathLike[str],
    *,
    legends: Sequence[str] | None = None,
    per_row: int = 4,
    size: int = 250,
) -> Path:
    """Draw ``smiles`` (None or invalid -> empty cell) in a grid and save it as PNG; returns the path."""
    try:
        from rdkit import Chem, rdBase
        from rdkit.Chem import Draw
    except ImportError:
        raise UsageError("--image needs RDKit: pip install 'metashot[chem]'") from None
    mols = []
    with rdBase.BlockLogs():
        for s in smiles:
            mol = Chem.MolFromSmiles(s) if s else None
            # invalid / empty: a lone '*' atom, so the cell keeps its legend (RDKit drops legends of empty mols)
            mols.append(mol if mol is not None else Chem.MolFromSmiles("*"))
    if not mols:
        raise UsageError("nothing to draw: no molecules")
    image = Draw.MolsToGridImage(
        mols, molsPerRow=min(per_row, len(mols)), subImgSize=(size, size),
        legends=[str(x) for x in legends] if legends is not None else None,
    )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    if hasattr(image, "save"):
        image.save(str(out))
    else:  # IPython image object in some RDKit builds
        out.write_bytes(image.data)
    return out
