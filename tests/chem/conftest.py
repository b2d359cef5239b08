"""Fixtures of the chem tests: a tiny trained checkpoint shared by the CLI tests (trained once)."""

from __future__ import annotations

from pathlib import Path

import pytest

from metashot.cli import main


@pytest.fixture(scope="session")
def tiny_run(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny VAE trained for 60 steps on 2,000 ZINC molecules with the CLI (~5 s)."""
    pytest.importorskip("rdkit")
    out = tmp_path_factory.mktemp("chem") / "run"
    code = main(["chem", "train", "--dataset", "zinc250k", "--preset", "tiny", "--max-molecules", "2000",
                 "--max-steps", "60", "--out", str(out), "--no-progress", "--device", "cpu",
                 "--data-dir", str(shared_data)])
    assert code == 0
    return out
