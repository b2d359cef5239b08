"""``metashot rnn train`` under torchrun (2 CPU processes, gloo; synthetic data, no data folder).

(a) a 2-process run reaches the weights of one process on the same global batch (float tolerance);
(b) a 2-process run SIGKILLed after a checkpoint and resumed ends bit-identical to an uninterrupted one
    (the reference is the victim's own later checkpoint, written before the kill: two torchrun launches);
(c) resuming on another world size, or a batch that does not split evenly, is refused.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from metashot.errors import CheckpointError, UsageError
from metashot.rnn.config import ModelConfig, TaskConfig, TrainConfig
from metashot.rnn.train import _train, train
from metashot.training import distributed as distrib
from metashot.training import load_checkpoint
from tests.distributed_helpers import (
    assert_groups_identical,
    finish,
    kill_after_checkpoint,
    rewind_one_checkpoint,
    torchrun,
)

# 8 sequences per step (4 per process), 2 steps per epoch: a checkpoint and a test evaluation every 2 steps.
# 600 test examples = 2 test batches (500 + 100), one evaluated on each rank.
ARGS = ["rnn", "train", "--task", "frequency", "--sampling", "async", "--model", "plstm", "--hidden-size", "8",
        "--batch-size", "8", "--epoch-size", "16", "--epochs", "1000", "--eval-examples", "600", "--seed", "5",
        "--grad-clip", "1.0", "--device", "cpu", "--no-progress"]
CONFIG = TrainConfig(task=TaskConfig(name="frequency", sampling="async"), model=ModelConfig(model="plstm", hidden_size=8),
                     batch_size=8, epoch_size=16, epochs=1000, eval_examples=600, seed=5, grad_clip=1.0)
EVERY = 2  # steps per epoch = checkpoint interval
# Measured once by hand: after 6 steps the largest weight difference 2 processes vs 1 was 6e-8 (Adam
# steps of float32 gradients summed in another order).
TOLERANCE = {"rtol": 1e-4, "atol": 1e-5}


def _metrics(path: Path) -> list[dict]:
    path = path / "metrics.jsonl" if path.is_dir() else path
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A 2-process run SIGKILLed after its second checkpoint, rewound to the first (as a crash between
    the two leaves it) and resumed to the second; the uninterrupted run's second checkpoint and its
    metrics are kept aside as the reference."""
    root = tmp_path_factory.mktemp("rnn-ddp")
    killed, straight = root / "killed", root / "straight"
    kill_after_checkpoint(torchrun([*ARGS, "--out", str(killed)]), killed, 2 * EVERY)
    interrupted_at, total = rewind_one_checkpoint(killed, straight)
    shutil.copy(killed / "metrics.jsonl", root / "uninterrupted.jsonl")
    log = finish(torchrun([*ARGS, "--out", str(killed), "--resume", "--max-steps", str(total),
                             "--max-minutes", "60"]))  # a budget: the ranks agree on it every step
    return {"killed": killed, "straight": straight, "interrupted_at": interrupted_at, "total": total,
            "root": root, "log": log}


def _strip(records: list[dict], last: int) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ("time", "elapsed_seconds")} for r in records if r["step"] <= last]


@pytest.mark.slow
def test_resume_after_sigkill_is_bit_identical(runs):
    a, b = load_checkpoint(runs["straight"]), load_checkpoint(runs["killed"])
    assert runs["interrupted_at"] < a.step == b.step == runs["total"]
    assert set(a.tensors) == set(b.tensors) == {"model", "optimizer", "rng", "rng-rank1"}
    assert_groups_identical(a, b, a.tensors)
    assert b.state["world_size"] == 2 and b.state["global_batch"] == 8 and b.state["batch_per_process"] == 4
    # metrics cut back to the checkpoint, then continued: one record per epoch, equal to the uninterrupted run's
    resumed = _strip(_metrics(runs["killed"]), runs["total"])
    assert resumed == _strip(_metrics(runs["root"] / "uninterrupted.jsonl"), runs["total"])
    assert [r["epoch"] for r in resumed] == list(range(runs["total"] // EVERY + 1))
    assert "2 processes x 1 micro-batches x 4 sequences = 8 sequences per optimizer step" in runs["log"]


@pytest.mark.slow
def test_two_processes_equal_one_process_on_the_same_global_batch(runs):
    one = runs["root"] / "one"
    train(CONFIG, one, max_steps=runs["total"], device="cpu", show_progress=False)
    a, b = load_checkpoint(runs["straight"]), load_checkpoint(one)
    assert a.step == b.step == runs["total"] and "world_size" not in b.state
    initial = load_checkpoint(runs["killed"] / f"checkpoint-{runs['interrupted_at']:08d}").tensors["model"]
    moved = False
    for key, value in a.tensors["model"].items():
        torch.testing.assert_close(value, b.tensors["model"][key], **TOLERANCE, msg=key)
        moved |= not torch.equal(value, initial[key])
    assert moved, "the weights did not change: the comparison proves nothing"
    # the per-epoch curve: training loss over the whole global batch, test set split between the ranks
    for two, single in zip(_metrics(runs["killed"]), _metrics(one), strict=True):
        assert two["test_examples"] == single["test_examples"] == 600
        for key in ("test_accuracy", "test_loss", "test_open_update_fraction", "train_loss", "train_accuracy"):
            if key in single:
                assert two[key] == pytest.approx(single[key], rel=1e-4, abs=1e-6), key


@pytest.mark.slow
def test_resume_on_another_world_size_is_refused(runs):
    with pytest.raises(CheckpointError, match="written by 2 process.*torchrun --nproc-per-node 2"):
        train(CONFIG, runs["killed"], resume=True, max_steps=runs["total"] + 2, device="cpu", show_progress=False)


def test_a_batch_that_does_not_split_over_the_processes_is_refused(tmp_path):
    # the check runs before any collective, so a pretend rank 0 of 2 is enough to reach it
    ctx = distrib.DistContext(rank=0, world_size=2, local_rank=0, device=torch.device("cpu"))
    odd = TrainConfig(model=ModelConfig(hidden_size=4), batch_size=7, epoch_size=14, epochs=1, eval_examples=4)
    with pytest.raises(UsageError, match="--batch-size 7 is the global batch.*2 processes.*multiple of 2"):
        _train(odd, tmp_path, resume=False, max_steps=1, max_minutes=None, ctx=ctx, show_progress=False, keep=2,
               accumulate=1)


def test_bnlstm_accumulating_two_micro_batches_learns_like_the_whole_batch(tmp_path):
    # accumulate=2 is what 2 processes compute; without batch norm the two are equal to float
    # tolerance, with the BN-LSTM's per-shard statistics they differ (so the 2-process twin of a
    # bnlstm run is the accumulate=2 run, not the plain one)
    cfg = TrainConfig(task=TaskConfig(name="frequency", sampling="standard"),
                      model=ModelConfig(model="bnlstm", hidden_size=8), batch_size=8, epoch_size=16, epochs=1,
                      eval_examples=8)
    whole = train(cfg, tmp_path / "whole", device="cpu", show_progress=False)
    halves = train(cfg, tmp_path / "halves", device="cpu", show_progress=False, accumulate=2)
    assert whole["step"] == halves["step"] == 2
    a, b = load_checkpoint(tmp_path / "whole"), load_checkpoint(tmp_path / "halves")
    assert b.state["accumulate"] == 2 and b.state["world_size"] == 1
    assert not all(torch.allclose(v, b.tensors["model"][k], **TOLERANCE) for k, v in a.tensors["model"].items())
    with pytest.raises(CheckpointError, match="accumulate=2"):
        train(cfg, tmp_path / "halves", resume=True, device="cpu", show_progress=False)
