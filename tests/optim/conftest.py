"""Fixtures for the optim tests: a briefly meta-trained quadratic optimizer (shared per session)."""

from __future__ import annotations

import pytest

from metashot.optim import CoordinatewiseLSTM, MetaTrainConfig, meta_train


@pytest.fixture(scope="session")
def quadratic_net(tmp_path_factory) -> CoordinatewiseLSTM:
    """An optimizer meta-trained for 20 epochs (100 unrolls) of 16 bundled 10-D quadratics (~4 s CPU).

    The meta learning rate is 10x the paper's so that this tiny budget already trains a useful
    optimizer (measured: mean final loss on 16 held-out quadratics 1.0 vs 1.9 for SGD at its best rate).
    """
    run = tmp_path_factory.mktemp("l2l-quadratic")
    config = MetaTrainConfig(
        task="quadratic", num_epochs=20, eval_every=10, num_val=4, checkpoint_every=20, meta_lr=0.01
    )
    meta_train(config, run, seed=0, show_progress=False, meta_batch_size=16)
    return CoordinatewiseLSTM.from_pretrained(run)


def heldout_quadratic_scores(net: CoordinatewiseLSTM) -> tuple[float, float]:
    """``(LSTM, tuned SGD)`` mean final loss at step 100 on 16 held-out quadratics; SGD gets the best of a
    learning-rate grid chosen on 4 validation quadratics (disjoint seeds)."""
    from metashot.optim import QuadraticTask
    from metashot.optim.evaluate import (
        baseline_factory,
        heldout_problem_seed,
        learned_factory,
        run_many,
        val_problem_seed,
    )

    task, steps = QuadraticTask(), 100
    val = [val_problem_seed(i) for i in range(4)]
    grid = (0.001, 0.003, 0.01)
    best_lr = min(grid, key=lambda lr: sum(c[-1] for c in run_many(task, baseline_factory("sgd", lr), val, steps, "cpu")))
    seeds = [heldout_problem_seed(0, i) for i in range(16)]
    sgd = [c[-1] for c in run_many(task, baseline_factory("sgd", best_lr), seeds, steps, "cpu")]
    lstm = [c[-1] for c in run_many(task, learned_factory(net), seeds, steps, "cpu")]
    return sum(lstm) / len(lstm), sum(sgd) / len(sgd)


def assert_same_meta_training(straight, split, step: int) -> None:
    """The latest checkpoints of two meta-training runs are at ``step`` with bit-identical LSTM weights."""
    import torch

    from metashot.training import load_checkpoint

    a, b = load_checkpoint(straight), load_checkpoint(split)
    assert a.step == b.step == step
    for key, value in a.group("model").items():
        assert torch.equal(value, b.group("model")[key]), key
