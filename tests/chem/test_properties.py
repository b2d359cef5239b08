"""RDKit properties against the data README's values (rows 0 and 1 of zinc250k_rdkit_props.csv.gz)."""

from __future__ import annotations

import pytest

pytest.importorskip("rdkit")

from metashot.chem.properties import compute_properties, objective_value  # noqa: E402

ROWS = [
    # smiles, logP, QED, SAS (README; recomputed with RDKit 2026.09.1)
    ("CC(C)(C)c1ccc2occ(CC(=O)Nc3ccccc3F)c2c1", 5.0506, 0.7319008436872338, 2.084094572072681),
    ("C[C@@H]1CC(Nc2cncc(-c3nncn3C)c2)C[C@@H](C)C1", 3.1137, 0.9411116113894995, 3.4320038192747795),
]


@pytest.mark.parametrize(("smiles", "logp", "qed", "sas"), ROWS)
def test_properties_match_the_data_file(smiles: str, logp: float, qed: float, sas: float) -> None:
    props = compute_properties(smiles)
    assert props is not None
    assert props["logP"] == pytest.approx(logp, abs=1e-4)
    assert props["QED"] == pytest.approx(qed, abs=1e-6)
    assert props["SAS"] == pytest.approx(sas, abs=1e-6)
    assert objective_value("qed-sas", smiles) == pytest.approx(5 * qed - sas, abs=1e-5)


def test_invalid_smiles_has_no_properties() -> None:
    assert compute_properties("C1CC") is None
    assert compute_properties("") is None
