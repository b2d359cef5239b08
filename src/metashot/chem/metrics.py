"""Generation metrics: validity, uniqueness, novelty and reconstruction (RDKit, imported lazily).

Definitions (as in MOSES and the papers that re-measured the character VAE):

- validity: fraction of generated strings that RDKit parses (empty strings are invalid);
- uniqueness: distinct canonical SMILES / valid molecules;
- novelty: fraction of the distinct valid molecules absent from the training set (canonical);
- reconstruction: fraction of inputs whose decoding has the same canonical SMILES as the input.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence

__all__ = ["canonical_or_none", "canonical_set", "evaluate_samples", "same_molecule"]


def canonical_or_none(smiles: str) -> str | None:
    """RDKit canonical SMILES, or None when the string is empty or not a molecule."""
    if not smiles:
        return None
    from rdkit import Chem, rdBase

    with rdBase.BlockLogs():
        mol = Chem.MolFromSmiles(smiles)
    if mol is None or mol.GetNumAtoms() == 0:
        return None
    return Chem.MolToSmiles(mol)


def canonical_set(smiles: Iterable[str]) -> frozenset[str]:
    """Canonical forms of ``smiles`` (invalid ones dropped)."""
    out = set()
    for s in smiles:
        c = canonical_or_none(s)
        if c is not None:
            out.add(c)
    return frozenset(out)


@functools.lru_cache(maxsize=4)
def _cached_canonical_set(smiles: tuple[str, ...]) -> frozenset[str]:
    return canonical_set(smiles)


def same_molecule(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` are valid and have the same canonical SMILES."""
    ca = canonical_or_none(a)
    return ca is not None and ca == canonical_or_none(b)


def evaluate_samples(smiles: Sequence[str], train: Sequence[str] | None = None) -> dict[str, float | int | None]:
    """Validity, uniqueness and (with ``train``) novelty of generated ``smiles``.

    Returns fractions in [0, 1] plus counts; uniqueness/novelty are None when nothing is valid.
    """
    canon = [canonical_or_none(s) for s in smiles]
    valid = [c for c in canon if c is not None]
    distinct = set(valid)
    result: dict[str, float | int | None] = {
        "n": len(smiles),
        "n_valid": len(valid),
        "n_unique": len(distinct),
        "validity": len(valid) / len(smiles) if smiles else None,
        "uniqueness": len(distinct) / len(valid) if valid else None,
    }
    if train is not None:
        train_set = _cached_canonical_set(tuple(train))
        novel = [c for c in distinct if c not in train_set]
        result["novelty"] = len(novel) / len(distinct) if distinct else None
    return result
