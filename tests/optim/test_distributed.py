"""Meta-training under torchrun (2 CPU processes, gloo): the optimizees of a meta-batch sharded over ranks.

(a) 2 processes with ``--meta-batch 2`` (one optimizee each) reach the weights of 1 process with
    ``--meta-batch 2`` (both optimizees), within float tolerance (measured: bit-identical on CPU);
(b) a 2-process run stopped mid-horizon, resumed, SIGKILLed after a later checkpoint and resumed
    again ends bit-identical (weights, Adam state, every rank's RNG and carried BPTT state, metrics)
    to an uninterrupted 2-process run;
(c) a non-finite unroll on one rank only makes both ranks skip and roll back together;
plus the refusals (another world size on resume, a meta-batch smaller than the world size) and the
exact single-process resume from a mid-horizon checkpoint.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from metashot.cli import main as cli_main
from metashot.errors import CheckpointError, UsageError
from metashot.optim import CoordinatewiseLSTM, MetaTrainConfig, meta_train
from metashot.optim import train as train_module
from metashot.training import distributed as distrib
from metashot.training import load_checkpoint
from metashot.training.metrics import read_metrics

if (Path(__file__).resolve().parents[1] / "distributed_helpers.py").exists():
    from tests import distributed_helpers as _helpers
else:
    from tests.training import test_distributed as _helpers


def _helper(*names: str):
    """A launch/kill helper of the fewshot torchrun test (shared module: public names; old: ``_`` names)."""
    for name in names:
        if hasattr(_helpers, name):
            return getattr(_helpers, name)
    raise AttributeError(f"{_helpers.__name__} has none of {names}")


descendants = _helper("descendants", "_descendants")
sigkill_tree = _helper("sigkill_tree", "_sigkill_tree")
latest_step = _helper("latest_step", "_latest_step")
proc_state = _helper("proc_state", "_state")
finish = _helper("finish", "_finish")

# 4 bundled 10-D quadratics per optimizee, horizon 20 = 4 unrolls of 5; a checkpoint every epoch.
ARGS = ["optim", "meta-train", "--task", "quadratic", "--meta-batch-size", "4", "--meta-batch", "2",
        "--horizon", "20", "--unroll", "5", "--epochs", "100000", "--eval-every", "2", "--num-val", "2",
        "--checkpoint-every", "1", "--meta-lr", "0.01", "--seed", "5", "--device", "cpu", "--no-progress"]
UNROLLS_PER_EPOCH = 4
MID = 6  # a --max-steps that stops mid-horizon (t = 10 of 20)
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _torchrun(out: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "metashot.cli", *ARGS, "--out", str(out), *extra]
    return subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """killed: 2 processes, stopped mid-horizon, resumed, SIGKILLed after a later checkpoint, resumed;
    straight: the uninterrupted 2-process twin; one: 1 process, same global meta-batch."""
    root = tmp_path_factory.mktemp("optim-ddp")
    killed, straight, one = root / "killed", root / "straight", root / "one"
    finish(_torchrun(killed, "--max-steps", str(MID)))
    assert load_checkpoint(killed).state["t"] == 10, "the first stop was meant to be mid-horizon"
    victim = _torchrun(killed, "--resume")
    deadline = time.monotonic() + 120
    while latest_step(killed) < MID + 2 * UNROLLS_PER_EPOCH:  # a horizon-boundary checkpoint after the resume
        if victim.poll() is not None:
            pytest.fail(victim.stderr.read().decode()[-4000:])
        assert time.monotonic() < deadline, "the resumed 2-process run wrote no checkpoint in time"
        time.sleep(0.01)
    workers = descendants(victim.pid)
    sigkill_tree(victim)
    deadline = time.monotonic() + 30
    while any(Path(f"/proc/{pid}").exists() and "Z" not in proc_state(pid) for pid in workers):
        assert time.monotonic() < deadline, "the workers survived SIGKILL"
        time.sleep(0.05)
    interrupted_at = latest_step(killed)
    total = interrupted_at + MID  # ends mid-horizon again
    jobs = [_torchrun(killed, "--resume", "--max-steps", str(total)), _torchrun(straight, "--max-steps", str(total))]
    assert cli_main([*ARGS, "--out", str(one), "--max-steps", str(total)]) == 0  # 1 process, in this one
    for job in jobs:
        finish(job)
    return {"killed": killed, "straight": straight, "one": one, "interrupted_at": interrupted_at, "total": total}


@pytest.mark.slow
def test_killed_and_resumed_run_is_bit_identical_to_an_uninterrupted_one(runs):
    a, b = load_checkpoint(runs["straight"]), load_checkpoint(runs["killed"])
    assert MID < runs["interrupted_at"] < a.step == b.step == runs["total"]
    groups = ("model", "optimizer", "rng", "rng-rank1", "carry", "carry-rank1", "rollback-model", "rollback-optimizer")
    assert sorted(a.tensors) == sorted(b.tensors) == sorted(groups)
    for group in groups:
        assert a.tensors[group].keys() == b.tensors[group].keys(), group
        for key, value in a.tensors[group].items():
            assert torch.equal(value, b.tensors[group][key]), f"{group}.{key} differs after resume"
    assert a.state == b.state
    assert b.state["world_size"] == 2 and b.state["meta_batch"] == 2 and 0 < b.state["t"] < 20
    # one carried optimizee per rank: index 0 on rank 0, index 1 on rank 1
    assert {k.split("/")[0] for k in b.tensors["carry"]} == {"0"}
    assert {k.split("/")[0] for k in b.tensors["carry-rank1"]} == {"1"}

    def records(path: Path, kind: str) -> list[dict]:
        return [{k: v for k, v in r.items() if k != "time"} for r in read_metrics(path / "metrics.jsonl") if kind in r]

    # every unroll logged once (cut back at each resume, then continued exactly)
    assert records(runs["killed"], "meta_loss") == records(runs["straight"], "meta_loss")
    assert [r["step"] for r in records(runs["killed"], "meta_loss")] == list(range(1, runs["total"] + 1))
    assert all(r["meta_batch"] == 2 and r["world_size"] == 2 for r in records(runs["killed"], "meta_loss"))
    # validations: the same ones, plus the final-weights validation of the run stopped at step MID
    assert [r for r in records(runs["killed"], "val_loss") if r["step"] != MID] == records(runs["straight"], "val_loss")


@pytest.mark.slow
def test_two_processes_equal_one_process_with_the_same_meta_batch(runs):
    two, one = load_checkpoint(runs["straight"]), load_checkpoint(runs["one"])
    assert two.step == one.step == runs["total"] and one.state["world_size"] == 1
    earlier = load_checkpoint(sorted(runs["straight"].glob("checkpoint-*"))[0])  # the one kept before the last
    assert earlier.step < two.step
    moved = False
    for key, value in one.tensors["model"].items():
        torch.testing.assert_close(two.tensors["model"][key], value, rtol=1e-5, atol=1e-7, msg=key)
        moved |= not torch.equal(value, earlier.tensors["model"][key])
    assert moved, "the weights did not change: the comparison proves nothing"
    for key, value in one.tensors["optimizer"].items():
        if key != "__json__":
            torch.testing.assert_close(two.tensors["optimizer"][key], value, rtol=1e-5, atol=1e-9, msg=key)
    carried = {**two.tensors["carry"], **two.tensors["carry-rank1"]}  # the 2 ranks' optimizees = the 1 process's
    assert carried.keys() == one.tensors["carry"].keys()
    for key, value in one.tensors["carry"].items():
        torch.testing.assert_close(carried[key], value, rtol=1e-5, atol=1e-7, msg=key)
    # sharded validation gives the single-process scores (same model selection)
    val = lambda run: [r["val_loss"] for r in read_metrics(run / "metrics.jsonl") if "val_loss" in r]  # noqa: E731
    assert len(val(runs["one"])) >= 2
    torch.testing.assert_close(torch.tensor(val(runs["straight"])), torch.tensor(val(runs["one"])), rtol=1e-5, atol=0)


@pytest.mark.slow
def test_resume_on_another_world_size_is_refused(runs):
    config = MetaTrainConfig(task="quadratic", horizon=20, unroll=5, meta_batch=2)
    with pytest.raises(CheckpointError, match="written by 2 process"):
        meta_train(config, runs["straight"], resume=True, show_progress=False, meta_batch_size=4)


def test_meta_batch_smaller_than_the_world_is_refused(tmp_path, monkeypatch):
    ctx = distrib.DistContext(rank=0, world_size=2, local_rank=0, device=torch.device("cpu"))
    monkeypatch.setattr(train_module.distrib, "setup", lambda device: ctx)
    config = MetaTrainConfig(task="quadratic", horizon=4, unroll=2)
    with pytest.raises(UsageError, match="--meta-batch 2"):
        meta_train(config, tmp_path / "run", show_progress=False)


def test_single_process_resume_from_mid_horizon_is_exact(tmp_path):
    config = MetaTrainConfig(task="quadratic", num_epochs=3, horizon=6, unroll=2, eval_every=1, num_val=2,
                             checkpoint_every=1, meta_batch=3, meta_lr=0.01)
    kw = dict(show_progress=False, meta_batch_size=2, seed=2)
    meta_train(config, tmp_path / "straight", max_steps=8, **kw)
    meta_train(config, tmp_path / "split", max_steps=4, **kw)  # t = 2 of 6 when it stops
    assert load_checkpoint(tmp_path / "split").state["t"] == 2
    meta_train(config, tmp_path / "split", max_steps=8, resume=True, **kw)
    a, b = load_checkpoint(tmp_path / "straight"), load_checkpoint(tmp_path / "split")
    assert a.step == b.step == 8 and sorted(a.tensors) == sorted(b.tensors)
    for group, tensors in a.tensors.items():
        for key, value in tensors.items():
            assert torch.equal(value, b.tensors[group][key]), f"{group}.{key}"


WORKER = textwrap.dedent('''
    """torchrun worker: only rank 1's optimizees produce non-finite losses."""
    import json, os, sys
    from metashot.errors import NonFiniteLossError
    from metashot.optim import MetaTrainConfig, QuadraticTask, meta_train
    from metashot.optim import tasks

    class Rank1Explodes:
        name = "rank1-explodes"

        def sample(self, seed, *, device="cpu"):
            problem = QuadraticTask().sample(seed, device=device)
            if os.environ["RANK"] == "1":
                finite = problem.loss
                problem.loss = lambda params, step: finite(params, step) * float("nan")
            return problem

    tasks.TASKS["rank1-explodes"] = lambda data_dir=None, **kw: Rank1Explodes()
    config = MetaTrainConfig(task="rank1-explodes", num_epochs=10, horizon=4, unroll=2, eval_every=100,
                             num_val=2, checkpoint_every=100, max_consecutive_failures=3, meta_batch=2)
    try:
        result = meta_train(config, sys.argv[1], show_progress=False, seed=1)
        outcome = f"finished: {result}"
    except NonFiniteLossError as exc:
        outcome = str(exc)
    with open(os.path.join(sys.argv[2], f"rank{os.environ['RANK']}.json"), "w") as fh:
        json.dump({"outcome": outcome}, fh)
''')


@pytest.mark.slow
def test_a_non_finite_unroll_on_one_rank_is_skipped_by_both(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           str(script), str(tmp_path / "run"), str(tmp_path)]
    done = subprocess.run(cmd, env=ENV, capture_output=True, timeout=180)
    assert done.returncode == 0, done.stderr.decode()[-4000:]
    for rank in (0, 1):  # rank 0's own unrolls were finite, yet it skipped and gave up with rank 1
        outcome = json.loads((tmp_path / f"rank{rank}.json").read_text())["outcome"]
        assert "3 unrolls in a row diverged" in outcome, (rank, outcome)
    ckpt = load_checkpoint(tmp_path / "run")
    assert ckpt.step == 3 and ckpt.state["skipped"] == 3
    torch.manual_seed(1)
    initial = CoordinatewiseLSTM(MetaTrainConfig(task="quadratic").net).state_dict()
    for key, value in ckpt.group("model").items():  # every step rolled back: the initial weights
        assert torch.equal(value, initial[key]), key
