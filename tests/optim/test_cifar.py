"""The CIFAR-10 conv-net tasks and separate LSTMs per parameter group (paper, Section 3.3)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from metashot.cli import main
from metashot.errors import UsageError
from metashot.optim import (
    CoordinatewiseLSTM,
    LearnedOptimizer,
    LSTMOptimizerConfig,
    init_state,
    make_task,
    unroll,
)
from metashot.optim.evaluate import heldout_problem_seed, learned_factory, run_optimizer
from metashot.optim.meta import optimizer_step
from metashot.optim.tasks import CIFAR10_SUBSETS, HELDOUT_SEED_START, CIFARConvTask

ROOT = Path(__file__).resolve().parents[2]
SEPARATE = LSTMOptimizerConfig(lstm_groups=("conv", "fc"))


def _random_params(task: CIFARConvTask, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(s, generator=g) * 0.1 for k, s in task.parameter_shapes().items()}


# --- the task ----------------------------------------------------------------------------------------


def test_cifar_tasks_are_registered_with_the_papers_network():
    task = make_task("cifar10-conv")
    shapes = task.parameter_shapes()
    assert [shapes[f"conv{i}.weight"] for i in range(3)] == [(16, 3, 5, 5), (16, 16, 5, 5), (16, 16, 5, 5)]
    assert shapes["fc0.weight"] == (16 * 4 * 4, 32) and shapes["fc1.weight"] == (32, 10)
    assert sum(math.prod(s) for s in shapes.values()) == 22602
    assert make_task("cifar10-conv-2label").parameter_shapes()["fc1.weight"] == (32, 2)
    assert make_task("cifar10-conv-5label").labels == (0, 1, 2, 3, 4)
    heldout = make_task("cifar10-conv-heldout").labels
    assert not set(heldout) & set(CIFAR10_SUBSETS["5label"]) and not set(heldout) & set(CIFAR10_SUBSETS["2label"])
    with pytest.raises(UsageError, match="labels must be"):
        CIFARConvTask(labels=(3,))


@pytest.mark.needs_shared_data
def test_cifar_problem_shapes_subsets_and_splits(shared_data):
    task = make_task("cifar10-conv-2label", data_dir=shared_data)
    train, test = task.sample(3), task.sample(HELDOUT_SEED_START + 3)
    assert train.images.shape == (10000, 3, 32, 32) and test.images.shape == (2000, 3, 32, 32)  # 2 classes
    assert set(train.labels.unique().tolist()) == {0, 1}
    params = train.init()
    assert {k: tuple(v.shape) for k, v in params.items()} == task.parameter_shapes()
    x = train.images[train.batch_indices(0)].float() / 255
    assert train.logits(params, x).shape == (128, 2)
    assert abs(train.loss(params, 0).item() - math.log(2)) < 0.05  # N(0, 0.01) output layer: near uniform
    again = task.sample(3)
    assert torch.equal(train.batch_indices(4), again.batch_indices(4))


@pytest.mark.needs_shared_data
def test_adam_decreases_the_cifar_loss_on_real_batches(shared_data):
    problem = CIFARConvTask(batch_size=64, data_dir=str(shared_data)).sample(1)
    curve = run_optimizer(problem, lambda p: torch.optim.Adam([v for _, v in p], lr=0.01), 12)
    assert curve[0] == pytest.approx(math.log(10), abs=0.05)
    assert sum(curve[-3:]) / 3 < curve[0] - 0.15, curve


# --- separate LSTMs ------------------------------------------------------------------------------------


def test_each_parameter_group_goes_through_its_own_lstm():
    net = CoordinatewiseLSTM(SEPARATE)
    params = _random_params(CIFARConvTask())
    assert net.num_lstms == 2
    assert {k: net.lstm_index(k) for k in params} == {k: 0 if k.startswith("conv") else 1 for k in params}
    grads = _random_params(CIFARConvTask(), seed=1)
    for fused in (False, True):
        for group, prefix in enumerate(("conv", "fc")):
            net.zero_grad(set_to_none=True)
            state = optimizer_step(net, init_state(net, params, fused=fused), grads)
            sum(state.params[k].sum() for k in params if k.startswith(prefix)).backward()
            used = [p.grad is not None and p.grad.abs().sum() > 0 for p in net.lstms[group].parameters()]
            assert all(used)  # every weight of this group's LSTM gets a gradient ...
            assert all(p.grad is None for p in net.lstms[1 - group].parameters())  # ... the other LSTM none


def test_learned_optimizer_routes_named_parameters_and_param_groups():
    net = CoordinatewiseLSTM(SEPARATE)
    params = {k: v.requires_grad_(True) for k, v in _random_params(CIFARConvTask()).items()}
    grads = _random_params(CIFARConvTask(), seed=1)
    for k, p in params.items():
        p.grad = grads[k].clone()
    expected = {}
    for k, p in params.items():
        h, c = net.initial_state(p.numel())
        expected[k] = p.detach() + net.lstms[net.lstm_index(k)].update_(grads[k].reshape(-1), h, c).view_as(p)
    LearnedOptimizer(list(params.items()), net=net).step()
    for k, p in params.items():  # fused: one call per LSTM over all its tensors, so blocks (and rounding) differ
        torch.testing.assert_close(p.detach(), expected[k], rtol=1e-6, atol=1e-7)
    with pytest.raises(UsageError, match="needs parameter names"):
        LearnedOptimizer(list(params.values()), net=net)
    fc = torch.nn.Parameter(torch.randn(5))
    fc.grad = torch.randn(5)
    h, c = net.initial_state(5)
    want = fc.detach() + net.lstms[1].update_(fc.grad.clone(), h, c)
    LearnedOptimizer([{"params": [fc], "lstm": "fc"}], net=net).step()
    torch.testing.assert_close(fc.detach(), want, rtol=0, atol=0)
    with pytest.raises(UsageError, match="matches none of the LSTM groups"):
        LearnedOptimizer([("bias", torch.nn.Parameter(torch.zeros(2)))], net=net)


def test_one_shared_lstm_is_the_default_and_keeps_the_state_dict_keys():
    net = CoordinatewiseLSTM()
    assert net.num_lstms == 1 and net.lstm_index("conv0.weight") == net.lstm_index("fc0.weight") == 0
    assert set(net.state_dict()) == {"weights.0", "weights.1", "biases.0", "biases.1", "out_weight", "out_bias"}
    assert set(CoordinatewiseLSTM(SEPARATE).state_dict()) == {f"lstms.{i}.{k}" for i in (0, 1) for k in net.state_dict()}


def test_separate_lstm_checkpoint_round_trip_through_the_cli(tmp_path, capsys):
    out = tmp_path / "run"
    # Quadratic problems have one tensor, "theta": route it by a pattern, with "*" as catch-all.
    code = main(["optim", "meta-train", "--task", "quadratic", "--out", str(out), "--separate-lstms", "th*,*",
                 "--max-steps", "2", "--horizon", "4", "--unroll", "2", "--num-val", "1", "--meta-batch-size", "2",
                 "--no-progress", "--device", "cpu"])
    assert code == 0
    capsys.readouterr()
    net = CoordinatewiseLSTM.from_pretrained(out)
    assert net.config.lstm_groups == ("th*", "*") and net.lstm_index("theta") == 0 and net.lstm_index("w") == 1
    trained = json.loads((out / "best" / "config.json").read_text())["net"]["lstm_groups"]
    assert trained == ["th*", "*"]
    again = CoordinatewiseLSTM.from_pretrained(out)
    assert again.fingerprint() == net.fingerprint()
    problem = make_task("quadratic").sample(heldout_problem_seed(0, 0))
    ml, _, _ = unroll(net, problem, init_state(net, problem.init()), 3)
    ml.backward()
    assert all(p.grad is None for p in net.lstms[1].parameters())  # "theta" never reaches the catch-all LSTM
    assert run_optimizer(problem, learned_factory(net), 3) == run_optimizer(problem, learned_factory(again), 3)
    code = main(["optim", "compare", "--checkpoint", str(out), "--task", "quadratic", "--steps", "3", "--runs", "1",
                 "--optimizers", "lstm", "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["optimizers"]["lstm"]["lstm_groups"] == ["th*", "*"]


def test_existing_single_lstm_checkpoint_loads_as_one_shared_lstm():
    net = CoordinatewiseLSTM.from_pretrained(ROOT / "checkpoints" / "l2l-quadratic")
    assert net.config.lstm_groups == () and net.num_lstms == 1


def test_committed_cifar_checkpoints_record_their_lstm_groups():
    separate = CoordinatewiseLSTM.from_pretrained(ROOT / "checkpoints" / "l2l-cifar10-conv-separate")
    assert separate.config.lstm_groups == ("conv", "fc") and separate.num_lstms == 2
    shared = CoordinatewiseLSTM.from_pretrained(ROOT / "checkpoints" / "l2l-cifar10-conv")  # config predates the field
    assert shared.config.lstm_groups == () and shared.num_lstms == 1
