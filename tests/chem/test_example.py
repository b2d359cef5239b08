"""The example runs in its cheap mode."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytestmark = pytest.mark.needs_shared_data


def test_latent_space_example_runs_in_cheap_mode(shared_data: Path, capsys) -> None:
    pytest.importorskip("rdkit")
    path = Path(__file__).parents[2] / "examples" / "chem_latent_space.py"
    spec = importlib.util.spec_from_file_location("chem_latent_space", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(["--cheap", "--data-dir", str(shared_data)])
    assert result["rejected"] == 1  # 'C1CC' (unclosed ring)
    assert 0.0 <= result["prior"]["validity"] <= 1.0
    assert "t=0.00" in capsys.readouterr().out
