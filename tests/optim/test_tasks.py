"""Task families: determinism per seed, shapes, the registry, and MNIST file validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from metashot.data.mnist import load_mnist
from metashot.errors import DataError, UsageError
from metashot.optim import Problem, QuadraticTask, Task, list_tasks, make_task


def test_registry_lists_the_issue_task_names():
    assert {"quadratic", "mnist-mlp", "mnist-mlp-wide", "mnist-mlp-deep", "mnist-mlp-relu"} <= set(list_tasks())
    with pytest.raises(UsageError, match="unknown task 'mnist'; choose from"):
        make_task("mnist")


def test_quadratic_problems_are_a_pure_function_of_the_seed():
    task = QuadraticTask()
    assert isinstance(task, Task)
    a, b, c = task.sample(3), task.sample(3), task.sample(4)
    assert isinstance(a, Problem)
    assert torch.equal(a.init()["theta"], b.init()["theta"])
    assert a.loss(a.init(), 0).item() == b.loss(b.init(), 0).item() != c.loss(c.init(), 0).item()
    assert a.init()["theta"].shape == (1, 10)


def test_bundled_quadratics_sum_independent_losses():
    bundle = QuadraticTask(num_problems=3).sample(0)
    theta = bundle.init()["theta"]
    total = bundle.loss({"theta": theta}, 0)
    parts = [((bundle.weight[i] @ theta[i] - bundle.target[i]) ** 2).sum() for i in range(3)]
    torch.testing.assert_close(total, sum(parts))


@pytest.mark.needs_shared_data
@pytest.mark.parametrize(
    "name,sizes",
    [("mnist-mlp", (784, 20, 10)), ("mnist-mlp-wide", (784, 40, 10)), ("mnist-mlp-deep", (784, 20, 20, 10))],
)
def test_mnist_tasks_build_the_papers_networks_and_replay_minibatches(shared_data, name, sizes):
    task = make_task(name, data_dir=shared_data)
    problem = task.sample(7)
    params = problem.init()
    assert [params[f"layer{i}.weight"].shape for i in range(len(sizes) - 1)] == list(zip(sizes[:-1], sizes[1:]))
    loss = problem.loss(params, 0)
    assert abs(loss.item() - np.log(10)) < 0.05  # tiny N(0, 0.01) weights: near-uniform predictions
    again = task.sample(7)
    assert torch.equal(problem.batch_indices(5), again.batch_indices(5))
    assert problem.loss(params, 5).item() == again.loss(again.init(), 5).item()


@pytest.mark.needs_shared_data
def test_mixed_architecture_task_draws_each_variant_reproducibly(shared_data):
    task = make_task("mnist-mlp-mixed-arch", data_dir=shared_data)
    seen = set()
    for seed in range(40):
        problem = task.sample(seed)
        params = problem.init()
        hidden = tuple(params[f"layer{i}.weight"].shape[1] for i in range(len(params) // 2 - 1))
        seen.add((problem.activation, hidden))
        again = task.sample(seed)
        assert again.activation == problem.activation
        assert all(torch.equal(params[k], v) for k, v in again.init().items())
    assert {h for _, h in seen} == {(20,), (40,), (20, 20)}
    assert {a for a, _ in seen} == {"sigmoid", "relu", "tanh", "elu"}
    with pytest.raises(UsageError, match="hidden sizes must be non-empty"):
        make_task("mnist-mlp", hidden_choices=((20,), ()))


def test_mnist_loader_rejects_wrong_shapes_with_a_clear_message(tmp_path):
    (tmp_path / "mnist").mkdir()
    np.savez(
        tmp_path / "mnist" / "mnist.npz",
        x_train=np.zeros((10, 28, 28), np.uint8), y_train=np.zeros(10, np.uint8),
        x_test=np.zeros((10, 28, 28), np.uint8), y_test=np.zeros(10, np.uint8),
    )
    with pytest.raises(DataError, match=r"x_train has shape \(10, 28, 28\) uint8, expected \(60000, 28, 28\)"):
        load_mnist("train", root=tmp_path)


def test_missing_mnist_names_the_fixing_command(tmp_path):
    with pytest.raises(DataError, match="metashot data download mnist"):
        load_mnist("train", root=tmp_path)


def test_paired_difference_is_the_mean_difference_with_a_normal_95_percent_interval():
    from metashot.optim.evaluate import paired_difference

    mean, half = paired_difference([1.0, 2.0, 3.0, 4.0], [0.5, 2.5, 2.0, 4.0])
    diffs = [0.5, -0.5, 1.0, 0.0]
    sd = (sum((d - 0.25) ** 2 for d in diffs) / 3) ** 0.5
    assert mean == pytest.approx(0.25) and half == pytest.approx(1.96 * sd / 2)
    # Pairing removes what the problems share: a constant offset has a zero-width interval.
    assert paired_difference([1.0, 5.0, 9.0], [0.9, 4.9, 8.9]) == (pytest.approx(0.1), pytest.approx(0.0, abs=1e-12))
    with pytest.raises(ValueError, match="equally long"):
        paired_difference([1.0], [1.0, 2.0])
