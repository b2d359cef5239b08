"""Meta-training under torchrun (2 CPU processes, gloo): the optimizees of a meta-batch sharded over ranks.

(a) a 2-process ``torchrun`` run SIGKILLed after a checkpoint and resumed ends bit-identical (weights,
    Adam state, every rank's RNG and carried BPTT state, metrics) to an uninterrupted 2-process run;
(b) a 2-process run stopped mid-horizon and resumed ends bit-identical to the uninterrupted one (the
    carried optimizee parameters and LSTM states of both ranks come back from the checkpoint);
(c) 2 processes with ``--meta-batch 2`` (one optimizee each) reach the weights of 1 process with
    ``--meta-batch 2`` (both optimizees), within float tolerance (measured: bit-identical on CPU);
(d) a non-finite unroll on one rank only makes both ranks skip and roll back together;
plus the refusals (another world size on resume, a meta-batch smaller than the world size) and the
exact single-process resume from a mid-horizon checkpoint.

Only the run that is SIGKILLed goes through ``torchrun`` (a launch costs ~8 s of CPU: three fresh
interpreters importing torch). Its resumption and the other 2-process runs fork this test process
twice (``_fork_ranks``) with the environment torchrun gives its workers (RANK, LOCAL_RANK, WORLD_SIZE,
MASTER_ADDR/PORT) and call the same CLI entry point: the same code path, without importing torch again.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import subprocess
from pathlib import Path

import pytest
import torch

from metashot.cli import main as cli_main
from metashot.errors import CheckpointError, NonFiniteLossError, UsageError
from metashot.optim import CoordinatewiseLSTM, MetaTrainConfig, QuadraticTask, meta_train
from metashot.optim import tasks as tasks_module
from metashot.optim import train as train_module
from metashot.training import distributed as distrib
from metashot.training import load_checkpoint
from metashot.training.metrics import read_metrics
from tests.distributed_helpers import assert_groups_identical, kill_after_checkpoint, torchrun

# 4 bundled 10-D quadratics per optimizee, horizon 20 = 4 unrolls of 5; a checkpoint every epoch.
ARGS = ["optim", "meta-train", "--task", "quadratic", "--meta-batch-size", "4", "--meta-batch", "2",
        "--horizon", "20", "--unroll", "5", "--epochs", "100000", "--eval-every", "2", "--num-val", "2",
        "--checkpoint-every", "1", "--meta-lr", "0.01", "--seed", "5", "--device", "cpu", "--no-progress"]
UNROLLS_PER_EPOCH = 4
EXTRA = 6  # steps after the SIGKILL: the runs end mid-horizon (t = 10 of 20)


def _torchrun(out: Path, *extra: str) -> subprocess.Popen:
    return torchrun([*ARGS, "--out", str(out), *extra])


def _rank_main(rank: int, world: int, port: int, target, args) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), LOCAL_WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    result = target(*args)
    if isinstance(result, int) and result != 0:
        raise SystemExit(result)


def _fork_ranks(target, *args, world: int = 2) -> None:
    """Run ``target(*args)`` on ``world`` forked ranks of one gloo process group (torchrun's environment)."""
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # the first optimizer imports torch._dynamo (~2 s): once, here
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    context = multiprocessing.get_context("fork")
    procs = [context.Process(target=_rank_main, args=(r, world, port, target, args)) for r in range(world)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=180)
    codes = [proc.exitcode for proc in procs]
    for proc in procs:
        if proc.is_alive():
            proc.kill()
    assert codes == [0] * world, f"rank exit codes {codes} (tracebacks on stderr)"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """killed: 2 processes (torchrun), SIGKILLed after a checkpoint, resumed; straight: its uninterrupted
    twin; split: stopped mid-horizon and resumed; one: 1 process with the same global meta-batch."""
    root = tmp_path_factory.mktemp("optim-ddp")
    killed, straight, split, one = (root / name for name in ("killed", "straight", "split", "one"))
    interrupted_at = kill_after_checkpoint(_torchrun(killed), killed, UNROLLS_PER_EPOCH)
    total = interrupted_at + EXTRA
    _fork_ranks(cli_main, [*ARGS, "--out", str(killed), "--max-steps", str(total), "--resume"])
    _fork_ranks(cli_main, [*ARGS, "--out", str(straight), "--max-steps", str(total)])
    _fork_ranks(cli_main, [*ARGS, "--out", str(split), "--max-steps", str(total - UNROLLS_PER_EPOCH)])
    assert load_checkpoint(split).state["t"] == 10, "the split run was meant to stop mid-horizon"
    _fork_ranks(cli_main, [*ARGS, "--out", str(split), "--max-steps", str(total), "--resume"])
    assert cli_main([*ARGS, "--out", str(one), "--max-steps", str(total)]) == 0
    return {"killed": killed, "straight": straight, "split": split, "one": one,
            "interrupted_at": interrupted_at, "total": total}


GROUPS = ("model", "optimizer", "rng", "rng-rank1", "carry", "carry-rank1", "rollback-model", "rollback-optimizer")


def _assert_identical(a, b) -> None:
    assert sorted(a.tensors) == sorted(b.tensors) == sorted(GROUPS)
    assert_groups_identical(a, b, GROUPS)
    assert a.state == b.state


def _records(path: Path, kind: str) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "time"} for r in read_metrics(path / "metrics.jsonl") if kind in r]


@pytest.mark.slow
def test_killed_and_resumed_run_is_bit_identical_to_an_uninterrupted_one(runs):
    a, b = load_checkpoint(runs["straight"]), load_checkpoint(runs["killed"])
    assert 0 < runs["interrupted_at"] < a.step == b.step == runs["total"]
    _assert_identical(a, b)
    assert b.state["world_size"] == 2 and b.state["meta_batch"] == 2 and b.state["t"] == 10
    # one carried optimizee per rank: index 0 on rank 0, index 1 on rank 1
    assert {k.split("/")[0] for k in b.tensors["carry"]} == {"0"}
    assert {k.split("/")[0] for k in b.tensors["carry-rank1"]} == {"1"}
    # every unroll logged once (cut back to the checkpoint, then continued exactly), validations too
    assert _records(runs["killed"], "meta_loss") == _records(runs["straight"], "meta_loss")
    assert [r["step"] for r in _records(runs["killed"], "meta_loss")] == list(range(1, runs["total"] + 1))
    assert all(r["meta_batch"] == 2 and r["world_size"] == 2 for r in _records(runs["killed"], "meta_loss"))
    assert _records(runs["killed"], "val_loss") == _records(runs["straight"], "val_loss")


@pytest.mark.slow
def test_two_process_resume_from_mid_horizon_is_bit_identical(runs):
    a, b = load_checkpoint(runs["straight"]), load_checkpoint(runs["split"])
    assert a.step == b.step == runs["total"]
    _assert_identical(a, b)
    assert _records(runs["split"], "meta_loss") == _records(runs["straight"], "meta_loss")
    # the validations, plus the final-weights validation of the run stopped mid-horizon (model selection)
    stop = runs["total"] - UNROLLS_PER_EPOCH
    assert [r for r in _records(runs["split"], "val_loss") if r["step"] != stop] == _records(runs["straight"], "val_loss")


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
    assert len(val(runs["one"])) >= 1
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
    assert_groups_identical(a, b, a.tensors)


class _Rank1Explodes:
    """Quadratics whose losses are NaN on rank 1 only (rank 0's own unrolls stay finite)."""

    name = "rank1-explodes"

    def sample(self, seed, *, device="cpu"):
        problem = QuadraticTask().sample(seed, device=device)
        if os.environ.get("RANK") == "1":
            finite = problem.loss
            problem.loss = lambda params, step: finite(params, step) * float("nan")
        return problem


def _exploding_run(run: Path, report: Path) -> None:
    config = MetaTrainConfig(task="rank1-explodes", num_epochs=10, horizon=4, unroll=2, eval_every=100,
                             num_val=2, checkpoint_every=100, max_consecutive_failures=3, meta_batch=2)
    try:
        meta_train(config, run, show_progress=False, seed=1)
        outcome = "finished"
    except NonFiniteLossError as exc:
        outcome = str(exc)
    (report / f"rank{os.environ['RANK']}.json").write_text(json.dumps({"outcome": outcome}))


def test_a_non_finite_unroll_on_one_rank_is_skipped_by_both(tmp_path, monkeypatch):
    monkeypatch.setitem(tasks_module.TASKS, "rank1-explodes", lambda data_dir=None, **kw: _Rank1Explodes())
    _fork_ranks(_exploding_run, tmp_path / "run", tmp_path)
    for rank in (0, 1):  # rank 0's own unrolls were finite, yet it skipped, rolled back and gave up with rank 1
        outcome = json.loads((tmp_path / f"rank{rank}.json").read_text())["outcome"]
        assert "3 unrolls in a row diverged" in outcome, (rank, outcome)
    ckpt = load_checkpoint(tmp_path / "run")
    assert ckpt.step == 3 and ckpt.state["skipped"] == 3 and ckpt.state["world_size"] == 2
    torch.manual_seed(1)
    initial = CoordinatewiseLSTM(MetaTrainConfig(task="quadratic").net).state_dict()
    for key, value in ckpt.group("model").items():  # every step rolled back: still the initial weights
        assert torch.equal(value, initial[key]), key


class _Rank1Budget:
    """A ``--max-minutes`` budget that runs out on rank 1 only, at its 4th check (before step 4)."""

    def __init__(self, minutes):
        self.checks = 0

    def expired(self) -> bool:
        self.checks += 1
        return os.environ.get("RANK") == "1" and self.checks > 3


def _budget_run(run: Path) -> None:
    config = MetaTrainConfig(task="quadratic", num_epochs=50, horizon=4, unroll=2, eval_every=100, num_val=2,
                             checkpoint_every=100, meta_batch=2)
    result = meta_train(config, run, show_progress=False, max_minutes=60.0, meta_batch_size=2)
    assert result.stopped_by == "max_minutes" and result.step == 3, result


def test_a_time_budget_spent_on_one_rank_stops_both_at_the_same_step(tmp_path, monkeypatch):
    monkeypatch.setattr(train_module, "TimeBudget", _Rank1Budget)
    _fork_ranks(_budget_run, tmp_path / "run")  # each rank asserts its own result
    ckpt = load_checkpoint(tmp_path / "run")
    assert ckpt.step == 3 and ckpt.state["t"] == 2  # stopped mid-horizon: both ranks' carried state saved
    assert {"carry", "carry-rank1", "rng", "rng-rank1"} <= set(ckpt.tensors)
