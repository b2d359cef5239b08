"""``metashot chem train`` under torchrun (2 CPU processes, gloo) on 300 real ZINC molecules.

(a) a 2-process run reaches the weights of one process that accumulates the same global batch in 2
    micro-batches (the encoder's batch norm normalises each rank's rows on their own);
(b) a 2-process run SIGKILLed after a checkpoint and resumed ends bit-identical to an uninterrupted one
    (the reference is the victim's own later checkpoint, written before the kill: two torchrun
    launches instead of three, which the loaded test machine's start-up and data-loading time needs);
(c) resuming on another world size, or a batch that does not split evenly, is refused.

Length bucketing and trimmed decoding are on, so the shards of a batch decode the batch's length.
Training needs no RDKit (tests/chem/test_no_rdkit.py), so neither do these tests.
"""

from __future__ import annotations

import json

import pytest
import torch

from metashot.chem.config import preset
from metashot.chem.train import _train, train
from metashot.errors import CheckpointError, UsageError
from metashot.training import distributed as distrib
from metashot.training import load_checkpoint
from tests.distributed_helpers import (
    assert_groups_identical,
    finish,
    kill_after_checkpoint,
    rewind_one_checkpoint,
    torchrun,
)

pytestmark = pytest.mark.needs_shared_data

EVERY = 3  # checkpoint interval (steps)
OPTIONS = {"bucket_by_length": True, "trim_padding": True, "eval_every": 4, "checkpoint_every": EVERY}
ARGS = ["chem", "train", "--preset", "tiny", "--max-molecules", "300", "--seed", "1", "--device", "cpu", "--no-progress"]
# 32 molecules per step (16 per process), 9 steps per epoch. Measured once by hand: largest weight
# difference 2 processes vs 1 process with accumulate=2 after 7 steps: exactly 0.0.
TOLERANCE = {"rtol": 1e-4, "atol": 1e-5}


def _config():
    return preset("tiny", max_molecules=300, **OPTIONS)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, shared_data):
    """A 2-process run SIGKILLed after its second checkpoint, rewound to the first (as a crash between
    the two leaves it) and resumed to the second; the uninterrupted run's second checkpoint is kept
    aside as the reference."""
    root = tmp_path_factory.mktemp("chem-ddp")
    options = root / "options.json"
    options.write_text(json.dumps(OPTIONS))
    args = [*ARGS, "--config", str(options), "--data-dir", str(shared_data)]
    killed, straight = root / "killed", root / "straight"
    kill_after_checkpoint(torchrun([*args, "--out", str(killed)]), killed, 2 * EVERY)
    interrupted_at, total = rewind_one_checkpoint(killed, straight)
    log = finish(torchrun([*args, "--out", str(killed), "--resume", "--max-steps", str(total),
                             "--max-minutes", "60"]))  # a budget: the ranks agree on it every step
    return {"killed": killed, "straight": straight, "interrupted_at": interrupted_at, "total": total,
            "root": root, "log": log}


@pytest.mark.slow
def test_resume_after_sigkill_is_bit_identical(runs):
    a, b = load_checkpoint(runs["straight"]), load_checkpoint(runs["killed"])
    assert runs["interrupted_at"] < a.step == b.step == runs["total"]
    assert set(a.tensors) == set(b.tensors) == {"model", "optimizer", "rng", "rng-rank1"}
    assert_groups_identical(a, b, a.tensors)
    assert b.state["world_size"] == 2 and b.state["global_batch"] == 32 and b.state["batch_per_process"] == 16
    assert a.state["position"] == b.state["position"] and a.state["epoch"] == b.state["epoch"]
    steps = [json.loads(line)["step"] for line in (runs["killed"] / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and steps[-1] == runs["total"]  # cut back to the checkpoint, then continued
    assert "2 processes x 1 micro-batches x 16 molecules = 32 molecules per optimizer step" in runs["log"]


@pytest.mark.slow
def test_two_processes_equal_one_process_accumulating_the_global_batch(runs, shared_data):
    one = runs["root"] / "one"
    result = train(_config(), one, data_dir=str(shared_data), device="cpu", seed=1, max_steps=runs["total"],
                   show_progress=False, accumulate=2)
    a, b = load_checkpoint(runs["straight"]), load_checkpoint(one)
    assert a.step == b.step == result.step == runs["total"]
    initial = load_checkpoint(runs["killed"] / f"checkpoint-{runs['interrupted_at']:08d}")
    moved = False
    for key, value in a.tensors["model"].items():
        if "running_" in key or "num_batches" in key:
            continue  # DDP keeps rank 0's batch-norm running statistics; accumulation updates them per micro-batch
        torch.testing.assert_close(value, b.tensors["model"][key], **TOLERANCE, msg=key)
        moved |= not torch.equal(value, initial.tensors["model"][key])
    assert moved, "the weights did not change: the comparison proves nothing"
    # the logged training losses (before the kill) are means over the whole global batch in both runs
    two = {r["step"]: r for r in map(json.loads, (runs["killed"] / "metrics.jsonl").read_text().splitlines())}
    compared = 0
    for record in map(json.loads, (one / "metrics.jsonl").read_text().splitlines()):
        if "loss" in record and record["step"] <= runs["interrupted_at"]:
            assert two[record["step"]]["loss"] == pytest.approx(record["loss"], rel=1e-5)
            compared += 1
    assert compared


@pytest.mark.slow
def test_resume_on_another_world_size_is_refused(runs, shared_data):
    with pytest.raises(CheckpointError, match="written by 2 process.*torchrun --nproc-per-node 2"):
        train(_config(), runs["killed"], data_dir=str(shared_data), device="cpu", resume=True,
              max_steps=runs["total"] + 1, show_progress=False)


def test_a_batch_that_does_not_split_over_the_processes_is_refused(tmp_path):
    # checked before the data is read and before any collective: a pretend rank 0 of 2 reaches it
    ctx = distrib.DistContext(rank=0, world_size=2, local_rank=0, device=torch.device("cpu"))
    with pytest.raises(UsageError, match="--batch-size 33 is the global batch.*2 processes.*multiple of 2"):
        _train(preset("tiny", batch_size=33), tmp_path, data_dir=None, ctx=ctx, seed=0, resume=False, max_steps=1,
               max_minutes=None, show_progress=False, on_log=None, accumulate=1)
