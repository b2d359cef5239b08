"""DistributedDataParallel few-shot training under torchrun (2 CPU processes, gloo).

(a) a 2-process run equals one process that accumulates the same global batch in 2 micro-batches;
(b) a 2-process run SIGKILLed after a checkpoint and resumed ends bit-identical to an uninterrupted one;
plus the per-rank RNG layout of the checkpoint and the refusal to resume on another world size.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import torch

from metashot.errors import CheckpointError
from metashot.training import distributed as distrib
from metashot.training import load_checkpoint
from tests.distributed_helpers import assert_groups_identical, kill_after_checkpoint, torchrun
from tests.distributed_helpers import finish as _finish

# Small, fast episodes on the un-rotated background set (the quickest Omniglot part to load).
ARGS = ["fewshot", "train", "--method", "matching", "--dataset", "omniglot", "--split", "background",
        "--way", "5", "--shot", "1", "--query", "2", "--lr", "0.01", "--seed", "3", "--device", "cpu", "--no-progress"]
EVERY = 3  # checkpoint interval


def _torchrun(out: Path, *extra: str) -> subprocess.Popen:
    return torchrun([*ARGS, "--out", str(out), "--log-every", "1", "--checkpoint-every", str(EVERY), *extra])


@pytest.fixture(scope="module")
def runs(tmp_path_factory, shared_data):
    """A 2-process run SIGKILLed after its first checkpoint, resumed, and an uninterrupted twin."""
    root = tmp_path_factory.mktemp("ddp")
    killed, straight = root / "killed", root / "straight"
    interrupted_at = kill_after_checkpoint(_torchrun(killed, "--steps", "100000"), killed, EVERY)
    total = interrupted_at + EVERY  # steps is not part of the compared config; --max-steps ends both runs here
    resumed = _torchrun(killed, "--steps", "100000", "--resume", "--max-steps", str(total))
    twin = _torchrun(straight, "--steps", "100000", "--max-steps", str(total))
    _finish(resumed)
    _finish(twin)
    return {"killed": killed, "straight": straight, "interrupted_at": interrupted_at, "total": total, "root": root}


@pytest.mark.needs_shared_data
@pytest.mark.slow
def test_resume_after_sigkill_is_bit_identical(runs):
    a, b = load_checkpoint(runs["straight"]), load_checkpoint(runs["killed"])
    assert runs["interrupted_at"] < a.step == b.step == runs["total"]
    assert_groups_identical(a, b, ("model", "optimizer", "rng", "rng-rank1"))
    assert b.state["world_size"] == 2 and b.state["global_episodes_per_step"] == 2
    lines = (runs["killed"] / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == runs["total"]  # cut back to the checkpoint, then continued: one line per step


@pytest.mark.needs_shared_data
@pytest.mark.slow
def test_two_processes_equal_one_process_accumulating_the_global_batch(runs, shared_data):
    from metashot.cli import build_parser
    from metashot.fewshot.cli import _train_config

    args = build_parser().parse_args([*ARGS, "--out", "x", "--steps", "100000", "--checkpoint-every", str(EVERY)])
    config = _train_config(args)
    from metashot.fewshot.train import train

    one = runs["root"] / "one"
    train(config, out=one, max_steps=runs["total"], device="cpu", show_progress=False,
          data_dir=str(shared_data), accumulate=2)
    a, b = load_checkpoint(runs["straight"]), load_checkpoint(one)
    assert a.step == b.step == runs["total"]
    initial = load_checkpoint(runs["straight"] / f"checkpoint-{runs['total'] - EVERY:08d}").tensors["model"]
    moved = False
    for key, value in a.tensors["model"].items():
        if "running_" in key or "num_batches" in key:
            continue  # DDP keeps rank 0's batch-norm running statistics; accumulation sees both shards
        torch.testing.assert_close(value, b.tensors["model"][key], rtol=1e-4, atol=1e-5, msg=key)
        moved |= not torch.equal(value, initial[key])
    assert moved, "the weights did not change: the comparison proves nothing"


@pytest.mark.needs_shared_data
@pytest.mark.slow
def test_resume_on_another_world_size_is_refused(runs, shared_data):
    from metashot.cli import build_parser
    from metashot.fewshot.cli import _train_config
    from metashot.fewshot.train import train

    args = build_parser().parse_args([*ARGS, "--out", "x", "--steps", "100000", "--checkpoint-every", str(EVERY)])
    with pytest.raises(CheckpointError, match="written by 2 process"):
        train(_train_config(args), out=runs["straight"], resume=True, max_steps=runs["total"] + 1, device="cpu",
              show_progress=False, data_dir=str(shared_data))


def test_single_process_helpers_are_no_ops():
    ctx = distrib.setup(torch.device("cpu"))
    assert (ctx.rank, ctx.world_size, ctx.is_main, ctx.distributed) == (0, 1, True, False)
    model = torch.nn.Linear(2, 2)
    assert distrib.wrap_ddp(model, ctx) is model
    x = torch.arange(10)
    assert torch.equal(distrib.shard(x, 1, 3), torch.tensor([1, 4, 7]))
    assert list(distrib.shard_indices(7, 0, 2)) == [0, 2, 4, 6]
    assert distrib.broadcast_object({"a": 1}, ctx) == {"a": 1}
    assert distrib.gather_objects(5, ctx) == [5]
    assert distrib.any_rank(True, ctx) and not distrib.any_rank(False, ctx)
    assert distrib.rng_group(0) == "rng" and distrib.rng_group(2) == "rng-rank2"
    distrib.barrier(ctx)
    distrib.cleanup(ctx)
