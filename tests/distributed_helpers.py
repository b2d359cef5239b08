"""Launching, watching and SIGKILLing ``torchrun`` jobs in tests (CPU processes, gloo).

Shared by the distributed tests of every trainer (tests/training, tests/optim, tests/rnn, tests/chem).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch


def torchrun(cli_args: list[str], *, nproc: int = 2) -> subprocess.Popen:
    """Start ``torchrun --standalone --nproc-per-node NPROC -m metashot.cli CLI_ARGS`` (one thread per
    process, output piped)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc),
           "-m", "metashot.cli", *cli_args]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def descendants(pid: int) -> list[int]:
    """``pid``'s children, grandchildren, ... (torchrun starts its workers in sessions of their own)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def sigkill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL torchrun and every worker at once, as when the node dies."""
    for pid in [proc.pid, *descendants(proc.pid)]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


def latest_step(run: Path) -> int:
    """The step of ``run``'s latest checkpoint (0 when there is none yet)."""
    try:
        return int((run / "latest").read_text().strip().removeprefix("checkpoint-"))
    except (FileNotFoundError, ValueError):
        return 0


def proc_state(pid: int) -> str:
    """The state letter of ``pid`` in /proc (``Z`` also when it is gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def finish(proc: subprocess.Popen, timeout: float = 240) -> str:
    """Wait for ``proc``; fail with the end of its output unless it exits 0. Returns its stderr."""
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, (out.decode()[-2000:], err.decode()[-4000:])
    return err.decode()


def kill_after_checkpoint(proc: subprocess.Popen, run: Path, step: int, timeout: float = 180) -> int:
    """Wait until ``run`` holds a checkpoint at ``step`` or later, SIGKILL ``proc``'s whole tree, wait
    until every worker is dead, and return the step of the checkpoint the run was left with."""
    deadline = time.monotonic() + timeout
    while latest_step(run) < step:
        if proc.poll() is not None:
            pytest.fail(proc.stderr.read().decode()[-4000:] if proc.stderr else "the run ended early")
        assert time.monotonic() < deadline, "the run wrote no checkpoint in time"
        time.sleep(0.02)
    workers = descendants(proc.pid)
    sigkill_tree(proc)
    deadline = time.monotonic() + 30
    while any(Path(f"/proc/{pid}").exists() and "Z" not in proc_state(pid) for pid in workers):
        assert time.monotonic() < deadline, "the workers survived SIGKILL"
        time.sleep(0.05)
    return latest_step(run)


def rewind_one_checkpoint(run: Path, keep_as: Path) -> tuple[int, int]:
    """Move ``run``'s newest checkpoint folder to ``keep_as`` and point ``latest`` at the one before:
    the run dir is then what a crash between those two checkpoints leaves behind, and ``keep_as`` is
    the uninterrupted run's checkpoint to compare a resume with. Returns ``(previous step, newest step)``."""
    folders = sorted(p for p in run.glob("checkpoint-*") if p.is_dir())
    assert len(folders) >= 2, f"{run} holds {len(folders)} checkpoint(s); need two"
    previous, newest = folders[-2], folders[-1]
    shutil.move(str(newest), str(keep_as))
    (run / "latest").write_text(previous.name + "\n")
    return int(previous.name.removeprefix("checkpoint-")), int(newest.name.removeprefix("checkpoint-"))


def assert_groups_identical(a, b, groups) -> None:
    """Every tensor of the checkpoint groups ``groups`` of ``a`` and ``b`` (:class:`Checkpoint`) is bit-equal."""
    for group in groups:
        assert a.tensors[group].keys() == b.tensors[group].keys(), group
        for key, value in a.tensors[group].items():
            assert torch.equal(value, b.tensors[group][key]), f"{group}.{key} differs after resume"
