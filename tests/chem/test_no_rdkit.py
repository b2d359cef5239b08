"""Training and GPU-side decoding work where RDKit, SELFIES and BoTorch are missing (the GPU machine)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.needs_shared_data

SRC = Path(__file__).parents[2] / "src"


def test_train_and_evaluate_without_rdkit(tmp_path: Path, shared_data: Path) -> None:
    blocker = tmp_path / "blocked"
    for name in ("rdkit", "selfies", "botorch"):
        (blocker / name).mkdir(parents=True)
        (blocker / name / "__init__.py").write_text(f"raise ImportError('{name} is not installed here')\n")
    env = {**os.environ, "PYTHONPATH": f"{blocker}{os.pathsep}{SRC}", "METASHOT_DATA": str(shared_data),
           "OMP_NUM_THREADS": "1"}
    run = tmp_path / "run"

    def cli(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "metashot.cli", "chem", *args], env=env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return done.stdout

    cli("train", "--preset", "tiny", "--max-molecules", "200", "--max-steps", "2", "--out", str(run),
        "--no-progress", "--device", "cpu")
    decodes = tmp_path / "decodes.json"
    out = json.loads(cli("evaluate", "--checkpoint", str(run), "--molecules", "4", "--decodes", "1",
                         "--prior-samples", "4", "--device", "cpu", "--json", "--save-decodes", str(decodes)))
    assert out["validity"] is None and "RDKit is not installed" in out["note"]
    assert 0.0 <= out["reconstruction_string"] <= 1.0
    saved = json.loads(decodes.read_text())
    assert len(saved["inputs"]) == 4 and len(saved["prior"]) == 4
