"""Meta-training: the unroll's meta-gradient, fused vs per-tensor, NaN safety, exact resume."""

from __future__ import annotations

import logging

import pytest
import torch

from metashot.errors import NonFiniteLossError, UsageError
from metashot.optim import (
    CoordinatewiseLSTM,
    LSTMOptimizerConfig,
    MetaTrainConfig,
    QuadraticTask,
    init_state,
    meta_train,
    unroll,
)
from metashot.optim import tasks as tasks_module
from metashot.optim.meta import step_weight
from metashot.training import load_checkpoint
from tests.optim.conftest import assert_same_meta_training

TINY = dict(task="quadratic", num_epochs=4, horizon=4, unroll=2, eval_every=2, num_val=2, checkpoint_every=2)


def test_unroll_meta_loss_reaches_every_lstm_weight_and_second_order_differs():
    torch.manual_seed(0)
    net = CoordinatewiseLSTM()
    problem = QuadraticTask(num_problems=3).sample(0)
    grads = {}
    for second_order in (False, True):
        net.zero_grad()
        meta_loss, losses, state = unroll(net, problem, init_state(net, problem.init()), 3, second_order=second_order)
        meta_loss.backward()
        assert len(losses) == 3 and state.step == 3
        grads[second_order] = torch.cat([p.grad.reshape(-1) for p in net.parameters()])
        assert torch.isfinite(grads[second_order]).all() and (grads[second_order] != 0).all()
    assert not torch.allclose(grads[False], grads[True])


def test_linear_weighting_averages_to_one_and_weights_each_loss_by_its_step_in_the_horizon():
    assert sum(step_weight(t, 100, "linear") for t in range(100)) == pytest.approx(100.0)
    assert step_weight(99, 100, "linear") == pytest.approx(200 / 101)
    assert {step_weight(t, 7) for t in range(9)} == {1.0}
    with pytest.raises(ValueError, match="unknown weighting"):
        step_weight(0, 10, "log")
    with pytest.raises(UsageError, match="loss_weighting"):
        MetaTrainConfig(task="quadratic", loss_weighting="log")

    torch.manual_seed(0)
    net = CoordinatewiseLSTM()
    problem = QuadraticTask(num_problems=3).sample(0)
    first = init_state(net, problem.init())
    _, _, middle = unroll(net, problem, first, 2)  # steps 0-1 of a horizon of 4; now at t = 2
    uniform, losses, end = unroll(net, problem, middle.detached(), 2)
    weighted, same_losses, _ = unroll(net, problem, middle.detached(), 2, weighting="linear", horizon=4)
    final = float(problem.loss(end.params, end.step))
    assert same_losses == losses
    assert float(uniform) == pytest.approx(sum(losses) + final, rel=1e-6)
    # w_t = 2 (t + 1) / 5 at t = 2, 3 and the final loss at t = 4
    expected = 2 * (3 * losses[0] + 4 * losses[1] + 5 * final) / 5
    assert float(weighted) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("preprocess", ["log-sign", "adam"])
def test_fused_parameters_give_the_same_trajectory_up_to_rounding(preprocess):
    torch.manual_seed(0)
    net = CoordinatewiseLSTM(LSTMOptimizerConfig(preprocess=preprocess))
    with torch.no_grad():
        net.out_weight.mul_(100.0)  # steps large enough that a wrong state would change the trajectory
    params = {"a": torch.randn(3, 4), "b": torch.randn(5)}

    class TwoTensors:
        def init(self):
            return {k: v.clone() for k, v in params.items()}

        def loss(self, p, step):
            return (p["a"] ** 2).sum() + ((p["b"] - 1) ** 2).sum()

    problem = TwoTensors()
    _, _, per_tensor = unroll(net, problem, init_state(net, problem.init()), 4)
    _, _, fused = unroll(net, problem, init_state(net, problem.init(), fused=True), 4)
    for k in params:
        torch.testing.assert_close(per_tensor.params[k], fused.params[k], rtol=1e-5, atol=1e-6)
        assert not torch.allclose(per_tensor.params[k], params[k])
    if preprocess == "adam":
        flat = torch.cat([per_tensor.moments["a"], per_tensor.moments["b"]], dim=1)
        torch.testing.assert_close(flat, fused.moments["*"], rtol=1e-5, atol=1e-6)


class _ExplodingProblem:
    """A quadratic whose loss becomes NaN from step 2 on (a stand-in for an exploding unroll)."""

    def __init__(self, seed):
        self.inner = QuadraticTask().sample(seed)

    def init(self):
        return self.inner.init()

    def loss(self, params, step):
        loss = self.inner.loss(params, step)
        return loss * float("nan") if step >= 2 else loss


class _ExplodingTask:
    name = "exploding"

    def __init__(self, **_):
        pass

    def sample(self, seed, *, device="cpu"):
        return _ExplodingProblem(seed)


def test_exploding_unrolls_are_reported_skipped_and_rolled_back_then_raise(tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(tasks_module.TASKS, "exploding", lambda data_dir=None, **kw: _ExplodingTask())
    config = MetaTrainConfig(**{**TINY, "task": "exploding", "max_consecutive_failures": 3})
    with caplog.at_level(logging.WARNING), pytest.raises(NonFiniteLossError, match="3 unrolls in a row diverged"):
        meta_train(config, tmp_path / "run", show_progress=False)
    assert "non-finite unroll" in caplog.text and "skipped and rolled back" in caplog.text
    weights = load_checkpoint(tmp_path / "run").group("model")
    assert all(torch.isfinite(w).all() for w in weights.values())


def test_resume_is_exact(tmp_path):
    config = MetaTrainConfig(**TINY)
    meta_train(config, tmp_path / "straight", show_progress=False, meta_batch_size=2, max_steps=8)
    meta_train(config, tmp_path / "split", show_progress=False, meta_batch_size=2, max_steps=4)
    meta_train(config, tmp_path / "split", show_progress=False, meta_batch_size=2, max_steps=8, resume=True)
    assert_same_meta_training(tmp_path / "straight", tmp_path / "split", 8)


def test_resume_from_a_mid_horizon_checkpoint_of_the_old_state_layout_is_exact(tmp_path):
    """metashot 0.1 carried (L, numel, H) states and wrote no ``carry_layout``: they are transposed on load."""
    import json

    from safetensors.torch import load_file, save_file

    config = MetaTrainConfig(**TINY)
    meta_train(config, tmp_path / "straight", show_progress=False, meta_batch_size=2, max_steps=8)
    meta_train(config, tmp_path / "split", show_progress=False, meta_batch_size=2, max_steps=3)  # t = 2 of 4
    folder = load_checkpoint(tmp_path / "split").path
    state = json.loads((folder / "state.json").read_text())
    assert state.pop("carry_layout") == "layers-hidden-coordinates"
    (folder / "state.json").write_text(json.dumps(state))
    carry = load_file(folder / "carry.safetensors")
    assert any("/h/" in k for k in carry)
    save_file({k: (v.transpose(1, 2).contiguous() if "/h/" in k or "/c/" in k else v) for k, v in carry.items()},
              folder / "carry.safetensors")
    meta_train(config, tmp_path / "split", show_progress=False, meta_batch_size=2, max_steps=8, resume=True)
    assert_same_meta_training(tmp_path / "straight", tmp_path / "split", 8)


def test_meta_train_refuses_to_overwrite_a_run_without_resume(tmp_path):
    config = MetaTrainConfig(**TINY)
    meta_train(config, tmp_path, show_progress=False, meta_batch_size=2, max_steps=2)
    with pytest.raises(Exception, match="--resume"):
        meta_train(config, tmp_path, show_progress=False, meta_batch_size=2, max_steps=2)
