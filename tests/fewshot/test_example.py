"""The example script runs in cheap mode (pytorch/examples' --dry-run habit)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fewshot_omniglot.py"


@pytest.mark.needs_shared_data
def test_fewshot_example_runs_in_cheap_mode(shared_data):
    spec = importlib.util.spec_from_file_location("fewshot_omniglot_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(["--cheap", "--data-dir", str(shared_data)])
    assert 0.0 <= result["accuracy"] <= 1.0
