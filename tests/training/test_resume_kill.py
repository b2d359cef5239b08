"""--resume after a real SIGKILL reaches bit-identical weights to an uninterrupted run (CPU)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from metashot.training import load_checkpoint

sys.path.insert(0, str(Path(__file__).parent))
import _toy_train  # noqa: E402

SCRIPT = Path(__file__).with_name("_toy_train.py")
STEPS = 30


def _run(out: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), "--out", str(out), "--steps", str(STEPS), *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def _latest_step(run: Path) -> int:
    latest = run / "latest"
    try:
        return int(latest.read_text().strip().removeprefix("checkpoint-"))
    except (FileNotFoundError, ValueError):
        return 0


@pytest.mark.slow
def test_resume_after_sigkill_gives_bit_identical_weights(tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    victim = _run(killed, "--sleep", "0.2")  # slow enough to be killed mid-run even under load
    deadline = time.monotonic() + 120
    while _latest_step(killed) < 9:  # wait for a few checkpoints, then kill mid-run
        assert victim.poll() is None, victim.stderr.read().decode()
        assert time.monotonic() < deadline, "the toy trainer wrote no checkpoint in time"
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL
    interrupted_at = _latest_step(killed)
    assert 9 <= interrupted_at < STEPS, "the run finished before the kill: the test proves nothing"

    resumed = _run(killed, "--resume")
    _toy_train.main(["--out", str(straight), "--steps", str(STEPS)])  # the uninterrupted run, meanwhile
    _, err = resumed.communicate(timeout=180)
    assert resumed.returncode == 0, err.decode()

    a, b = load_checkpoint(straight), load_checkpoint(killed)
    assert a.step == b.step == STEPS
    for group in ("model", "optimizer"):
        assert a.tensors[group].keys() == b.tensors[group].keys()
        for key, value in a.tensors[group].items():
            assert torch.equal(value, b.tensors[group][key]), f"{group}.{key} differs after resume"
    # the metrics log was cut back to the checkpoint and continued: one record per step
    lines = (killed / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == STEPS
