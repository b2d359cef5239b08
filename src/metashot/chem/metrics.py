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

__all__ = ["NoveltyIndex", "canonical_or_none", "canonical_set", "evaluate_samples", "first_valid", "same_molecule"]


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


def first_valid(candidates: Sequence[str]) -> str | None:
    """Canonical SMILES of the first candidate RDKit parses (beam search best first), or None if none does.

    Decoding with a validity check, as JT-VAE's decoder checks chemistry while it decodes: the most
    probable *valid* string of a beam rather than the most probable string.
    """
    for s in candidates:
        c = canonical_or_none(s)
        if c is not None:
            return c
    return None


def canonical_set(smiles: Iterable[str]) -> frozenset[str]:
    """Canonical forms of ``smiles`` (invalid ones dropped)."""
    out = set()
    for s in smiles:
        c = canonical_or_none(s)
        if c is not None:
            out.add(c)
    return frozenset(out)


def _atom_key(smiles: str) -> str:
    """Letters of a SMILES string, upper-cased and sorted: the same for every way RDKit writes a molecule
    (ring digits, branches, bond symbols, aromatic case and atom order do not enter it)."""
    return "".join(sorted(ch for ch in smiles.upper() if ch.isalpha()))


class NoveltyIndex:
    """Is a molecule in the training set? Exact, without canonicalising 225k training SMILES up front.

    A generated canonical SMILES is looked up among the raw training strings first; otherwise only the
    training molecules with the same letter multiset (:func:`_atom_key`) are canonicalised and
    compared. Canonicalising all of ZINC-250k takes ~1-2 minutes; this takes ~1 second.
    """

    def __init__(self, train: Sequence[str]) -> None:
        self.raw = set(train)
        self.by_key: dict[str, list[str]] = {}
        for s in train:
            self.by_key.setdefault(_atom_key(s), []).append(s)
        self._canon: dict[str, str | None] = {}

    def __contains__(self, canonical: str) -> bool:
        if canonical in self.raw:
            return True
        for s in self.by_key.get(_atom_key(canonical), ()):
            if s not in self._canon:
                self._canon[s] = canonical_or_none(s)
            if self._canon[s] == canonical:
                return True
        return False


@functools.lru_cache(maxsize=2)
def _novelty_index(train: tuple[str, ...]) -> NoveltyIndex:
    return NoveltyIndex(train)


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
        index = _novelty_index(tuple(train))
        novel = [c for c in distinct if c not in index]
        result["novelty"] = len(novel) / len(distinct) if distinct else None
    return result
