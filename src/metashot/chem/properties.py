"""Molecular properties with RDKit: logP (Crippen), QED, SA score and the paper's 5*QED - SAS.

The SA score is RDKit's contributed ``sascorer`` (Ertl & Schuffenhauer 2009), as in the paper and
as used for ``zinc250k_rdkit_props.csv.gz``. RDKit is imported lazily.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any

from metashot.errors import UsageError

__all__ = ["OBJECTIVES", "compute_properties", "list_objectives", "objective_value", "qed_minus_sas"]


@functools.cache
def _sascorer() -> Any:
    try:
        from rdkit.Chem import RDConfig
    except ImportError:
        raise UsageError("properties need RDKit: pip install 'metashot[chem]'") from None
    path = os.path.join(RDConfig.RDContribDir, "SA_Score")
    if not os.path.isfile(os.path.join(path, "sascorer.py")):
        raise UsageError(f"RDKit's contributed SA_Score/sascorer.py is missing under {RDConfig.RDContribDir}")
    if path not in sys.path:
        sys.path.append(path)
    import sascorer  # type: ignore[import-not-found]

    return sascorer


def _mol(smiles: str) -> Any:
    from rdkit import Chem, rdBase

    if not smiles:
        return None
    with rdBase.BlockLogs():
        return Chem.MolFromSmiles(smiles)


def compute_properties(smiles: str) -> dict[str, float] | None:
    """``{"logP", "QED", "SAS", "qed_sas"}`` of a SMILES string, or None if RDKit cannot parse it."""
    mol = _mol(smiles)
    if mol is None:
        return None
    from rdkit.Chem import QED, Crippen

    qed = float(QED.qed(mol))
    sas = float(_sascorer().calculateScore(mol))
    return {"logP": float(Crippen.MolLogP(mol)), "QED": qed, "SAS": sas, "qed_sas": 5.0 * qed - sas}


def qed_minus_sas(props: dict[str, float]) -> float:
    """The paper's optimisation objective ``5 * QED - SAS``."""
    return 5.0 * props["QED"] - props["SAS"]


# objective name -> (value from a properties dict, value from a (logP, QED, SAS) prediction tensor row)
OBJECTIVES: dict[str, Callable[[dict[str, float]], float]] = {
    "qed-sas": qed_minus_sas,
    "qed": lambda p: p["QED"],
    "logp": lambda p: p["logP"],
    "neg-sas": lambda p: -p["SAS"],
}
# weights on (logP, QED, SAS) giving each objective as a linear function of the properties
OBJECTIVE_WEIGHTS: dict[str, tuple[float, float, float]] = {
    "qed-sas": (0.0, 5.0, -1.0),
    "qed": (0.0, 1.0, 0.0),
    "logp": (1.0, 0.0, 0.0),
    "neg-sas": (0.0, 0.0, -1.0),
}


def list_objectives() -> list[str]:
    return list(OBJECTIVES)


def objective_value(name: str, smiles: str) -> float | None:
    """Objective ``name`` of ``smiles`` (None when invalid)."""
    if name not in OBJECTIVES:
        raise UsageError(f"unknown objective {name!r}; choose one of {', '.join(OBJECTIVES)}")
    props = compute_properties(smiles)
    return None if props is None else OBJECTIVES[name](props)
