"""Molecule data files: corrupt/truncated gzip and wrong row counts give DataError with the file name."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from metashot.data.molecules import load_moses, load_zinc250k
from metashot.errors import DataError


def test_truncated_gzip_raises_data_error(tmp_path: Path) -> None:
    folder = tmp_path / "zinc250k"
    folder.mkdir()
    blob = gzip.compress(b"smiles,logP,qed,SAS\n" + b"CCO,1,0.5,2\n" * 2000)
    (folder / "zinc250k_rdkit_props.csv.gz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match="zinc250k_rdkit_props.csv.gz: corrupt or truncated gzip"):
        load_zinc250k(tmp_path)


def test_wrong_row_count_raises_data_error(tmp_path: Path) -> None:
    folder = tmp_path / "zinc250k"
    folder.mkdir()
    (folder / "zinc250k_rdkit_props.csv.gz").write_bytes(gzip.compress(b"smiles,logP,qed,SAS\nCCO,1,0.5,2\n"))
    with pytest.raises(DataError, match="has 1 molecules, expected 249456"):
        load_zinc250k(tmp_path)


def test_missing_file_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="metashot data download moses"):
        load_moses("train", tmp_path)


@pytest.mark.needs_shared_data
def test_zinc250k_loads_with_properties(shared_data: Path) -> None:
    table = load_zinc250k(shared_data)
    assert len(table) == 249_456
    assert table.smiles[0] == "CC(C)(C)c1ccc2occ(CC(=O)Nc3ccccc3F)c2c1"
    assert table.properties is not None and table.properties.shape == (249_456, 3)
    assert table.properties[:, 0].mean() == pytest.approx(2.45712, abs=1e-3)
