"""Molecule datasets: ZINC-250k (Gómez-Bombarelli et al.) and the MOSES splits.

Both are read from the data directory (``--data-dir``, ``$METASHOT_DATA``, ``~/.cache/metashot``)
with :func:`metashot.data.paths.dataset_file`. Nothing here needs RDKit: the SMILES are returned as
written in the files (the ZINC-250k strings are the paper's, already RDKit-written), so training runs
on machines without RDKit.

Files (layout of ``shared/data``):

- ``zinc250k/250k_rndm_zinc_drugs_clean.smi.gz``: 249,456 SMILES, one per line, the paper's order.
- ``zinc250k/zinc250k_rdkit_props.csv.gz``: ``smiles,logP,qed,SAS`` for the same molecules, same order.
- ``moses/{train,test,test_scaffolds}.csv.gz``: one ``SMILES`` column with a header line.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import zlib
from dataclasses import dataclass

import numpy as np

from metashot.data.paths import dataset_file
from metashot.errors import DataError

ZINC_SMILES = "zinc250k/250k_rndm_zinc_drugs_clean.smi.gz"
ZINC_PROPS = "zinc250k/zinc250k_rdkit_props.csv.gz"
ZINC_SIZE = 249_456
PROPERTY_NAMES = ("logP", "QED", "SAS")
MOSES_SPLITS = ("train", "test", "test_scaffolds")

__all__ = [
    "MOSES_SPLITS",
    "PROPERTY_NAMES",
    "ZINC_SIZE",
    "MoleculeTable",
    "load_moses",
    "load_zinc250k",
    "read_gzip_lines",
]


@dataclass
class MoleculeTable:
    """SMILES with optional properties.

    Attributes:
        smiles: ``n_molecules`` SMILES strings.
        properties: ``(n_molecules, 3)`` float32 array of logP, QED, SAS, or ``None``.
        source: the file it was read from (for messages).
    """

    smiles: list[str]
    properties: np.ndarray | None
    source: str

    def __len__(self) -> int:
        return len(self.smiles)

    def subset(self, index: np.ndarray | slice) -> MoleculeTable:
        idx = np.arange(len(self.smiles))[index]
        props = None if self.properties is None else self.properties[idx]
        return MoleculeTable([self.smiles[i] for i in idx], props, self.source)


def read_gzip_lines(path: str | os.PathLike[str]) -> list[str]:
    """All lines of a gzip text file, stripped; :class:`DataError` if it is corrupt or truncated."""
    try:
        with gzip.open(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(
            f"{path}: corrupt or truncated gzip file ({exc}); delete it and copy/download it again"
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc}); the file is damaged") from None
    return [line.strip() for line in io.StringIO(text) if line.strip()]


def load_zinc250k(root: str | os.PathLike[str] | None = None, *, properties: bool = True) -> MoleculeTable:
    """The 249,456 ZINC-250k molecules of the paper, with RDKit-recomputed logP, QED, SAS.

    Args:
        root: data directory (``--data-dir``); default ``$METASHOT_DATA`` / ``~/.cache/metashot``.
        properties: read ``zinc250k_rdkit_props.csv.gz`` (else only the ``.smi.gz`` list).
    """
    if not properties:
        path = dataset_file(ZINC_SMILES, dataset="zinc250k", root=root)
        smiles = read_gzip_lines(path)
        _check_count(path, len(smiles))
        return MoleculeTable(smiles, None, str(path))
    path = dataset_file(ZINC_PROPS, dataset="zinc250k", root=root)
    lines = read_gzip_lines(path)
    if not lines or lines[0].split(",") != ["smiles", "logP", "qed", "SAS"]:
        raise DataError(f"{path}: expected the header 'smiles,logP,qed,SAS', got {lines[:1]!r}")
    smiles: list[str] = []
    values = np.empty((len(lines) - 1, 3), dtype=np.float32)
    for row_index, row in enumerate(csv.reader(lines[1:])):
        if len(row) != 4:
            raise DataError(f"{path}: line {row_index + 2} has {len(row)} fields, expected 4; the file is damaged")
        smiles.append(row[0])
        try:
            values[row_index] = [float(row[1]), float(row[2]), float(row[3])]
        except ValueError:
            raise DataError(f"{path}: line {row_index + 2} has a non-numeric property: {row[1:]!r}") from None
    _check_count(path, len(smiles))
    return MoleculeTable(smiles, values, str(path))


def _check_count(path: os.PathLike[str] | str, count: int) -> None:
    if count != ZINC_SIZE:
        raise DataError(
            f"{path}: has {count} molecules, expected {ZINC_SIZE}; the file is truncated or not the paper's set"
        )


def load_moses(split: str = "train", root: str | os.PathLike[str] | None = None) -> MoleculeTable:
    """A MOSES split (``train``, ``test`` or ``test_scaffolds``) without properties."""
    if split not in MOSES_SPLITS:
        raise DataError(f"unknown MOSES split {split!r}; choose one of {', '.join(MOSES_SPLITS)}")
    path = dataset_file(f"moses/{split}.csv.gz", dataset="moses", root=root)
    lines = read_gzip_lines(path)
    if not lines or lines[0].strip() != "SMILES":
        raise DataError(f"{path}: expected the header 'SMILES', got {lines[:1]!r}")
    return MoleculeTable(lines[1:], None, str(path))
