"""LearnedOptimizer: optimizer conformance, equality with the meta-training unroll, learning happens."""

from __future__ import annotations

import shutil

import pytest
import torch

from metashot.errors import CheckpointError, UsageError
from metashot.optim import (
    CoordinatewiseLSTM,
    LearnedOptimizer,
    LSTMOptimizerConfig,
    QuadraticTask,
    init_state,
    unroll,
)
from metashot.optim.evaluate import (
    heldout_problem_seed,
)
from metashot.training.checkpoint import load_optimizer_tensors, optimizer_tensors
from tests.optim.conftest import heldout_quadratic_scores


def _rosenbrock(xy: torch.Tensor) -> torch.Tensor:
    return (1 - xy[0]) ** 2 + 100 * (xy[1] - xy[0] ** 2) ** 2


def test_learned_optimizer_decreases_the_loss_of_a_quadratic(quadratic_net):
    problem = QuadraticTask().sample(heldout_problem_seed(0, 0))
    theta = problem.init()["theta"].requires_grad_(True)
    opt = LearnedOptimizer([theta], net=quadratic_net)
    first = problem.loss({"theta": theta}, 0).item()
    for t in range(50):
        opt.zero_grad()
        problem.loss({"theta": theta}, t).backward()
        opt.step()
    assert problem.loss({"theta": theta}, 50).item() < 0.5 * first


def test_learned_optimizer_supports_a_closure_and_returns_its_loss(quadratic_net):
    xy = torch.tensor([-1.5, 2.0], requires_grad=True)
    opt = LearnedOptimizer([xy], net=quadratic_net)

    def closure():
        opt.zero_grad()
        loss = _rosenbrock(xy)
        loss.backward()
        return loss

    losses = [opt.step(closure).item() for _ in range(30)]
    assert losses[0] == pytest.approx(_rosenbrock(torch.tensor([-1.5, 2.0])).item())
    assert min(losses) < losses[0]


def test_state_dict_round_trips_exactly_through_safetensors_tensors(quadratic_net):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten(), torch.nn.Linear(8, 1))
    x = torch.randn(4, 1, 4, 4)

    def train(opt, steps):
        for _ in range(steps):
            opt.zero_grad()
            model(x).pow(2).mean().backward()
            opt.step()

    opt = LearnedOptimizer(model.parameters(), net=quadratic_net)
    train(opt, 3)
    saved_model = {k: v.clone() for k, v in model.state_dict().items()}
    # Like Adam's exp_avg, the LSTM state is updated in place: snapshot it as a save to disk would.
    flat = {k: v.clone() for k, v in optimizer_tensors(opt.state_dict()).items()}
    train(opt, 2)
    expected = {k: v.clone() for k, v in model.state_dict().items()}

    model.load_state_dict(saved_model)
    restored = LearnedOptimizer(model.parameters(), net=quadratic_net)
    restored.load_state_dict(load_optimizer_tensors(flat))
    train(restored, 2)
    for key, value in model.state_dict().items():
        assert torch.equal(value, expected[key]), key
    assert restored.state[next(iter(model.parameters()))]["h"].shape == (2, 20, 2 * 1 * 3 * 3)


def test_state_saved_in_the_old_coordinates_first_layout_loads_and_continues_exactly(quadratic_net):
    """metashot 0.1 saved h and c as (L, numel, H) with no "state_layout": they are transposed on load."""
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(20)), torch.nn.Parameter(torch.randn(3, 4))]  # numel 20 == H too

    def step(opt):
        for p in params:
            p.grad = p.detach() * 2.0
        opt.step()

    opt = LearnedOptimizer(params, net=quadratic_net)
    step(opt)
    saved = opt.state_dict()
    old = {
        "param_groups": [{k: v for k, v in g.items() if k != "state_layout"} for g in saved["param_groups"]],
        "state": {i: {k: (v.transpose(1, 2).clone() if k in ("h", "c") else v) for k, v in s.items()}
                  for i, s in saved["state"].items()},
    }
    start = [p.detach().clone() for p in params]
    step(opt)
    expected = [p.detach().clone() for p in params]

    for p, s in zip(params, start):
        p.data.copy_(s)
    restored = LearnedOptimizer(params, net=quadratic_net)
    restored.load_state_dict(old)
    step(restored)
    for p, e in zip(params, expected):
        assert torch.equal(p.detach(), e)
    assert restored.state[params[1]]["h"].shape == (2, 20, 12)

    saved["param_groups"][0]["state_layout"] = "something-newer"
    with pytest.raises(CheckpointError, match="unknown optimizer state layout"):
        LearnedOptimizer(params, net=quadratic_net).load_state_dict(saved)


def test_loading_state_saved_with_another_network_is_refused(quadratic_net):
    p = torch.nn.Parameter(torch.randn(3))
    opt = LearnedOptimizer([p], net=quadratic_net)
    p.grad = torch.ones(3)
    opt.step()
    other = LearnedOptimizer([p], net=CoordinatewiseLSTM())
    with pytest.raises(CheckpointError, match="saved with LSTM weights"):
        other.load_state_dict(opt.state_dict())


def test_learned_optimizer_validates_its_arguments(quadratic_net):
    p = torch.nn.Parameter(torch.randn(3))
    with pytest.raises(UsageError, match="exactly one of"):
        LearnedOptimizer([p])
    with pytest.raises(UsageError, match="invalid learning rate"):
        LearnedOptimizer([p], net=quadratic_net, lr=-1.0)


@pytest.mark.parametrize("shape", [(), (5,), (3, 4), (2, 3, 2, 2)])
def test_learned_optimizer_handles_any_parameter_shape_and_float64(quadratic_net, shape):
    p = torch.nn.Parameter(torch.randn(shape, dtype=torch.float64))
    before = p.detach().clone()
    opt = LearnedOptimizer([p], net=quadratic_net)
    p.grad = torch.randn(shape, dtype=torch.float64)
    opt.step()
    assert p.shape == before.shape and p.dtype == torch.float64
    assert not torch.equal(p.detach(), before)


@pytest.mark.parametrize("num_problems", [4, 1000])  # 40 coordinates: one block; 10,000: three blocks
def test_step_gives_identical_parameters_to_the_meta_training_unroll(quadratic_net, num_problems):
    problem = QuadraticTask(num_problems=num_problems).sample(123)
    k = 7
    _, _, state = unroll(quadratic_net, problem, init_state(quadratic_net, problem.init()), k)

    theta = problem.init()["theta"].requires_grad_(True)
    opt = LearnedOptimizer([theta], net=quadratic_net)
    for t in range(k):
        opt.zero_grad()
        problem.loss({"theta": theta}, t).backward()
        opt.step()
    assert torch.equal(theta.detach(), state.params["theta"].detach())
    assert torch.equal(opt.state[theta]["h"], state.h["theta"].detach())


def test_briefly_meta_trained_optimizer_beats_tuned_sgd_on_held_out_quadratics(quadratic_net):
    # The fixture's 20 epochs of meta-training put the LSTM well below SGD at step 100 (measured
    # 1.0 vs 1.9); requiring a strictly lower mean leaves a wide margin.
    lstm, sgd = heldout_quadratic_scores(quadratic_net)
    assert lstm < sgd


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_learned_optimizer_runs_on_gpu_like_on_cpu(quadratic_net):
    torch.manual_seed(0)
    cpu = torch.nn.Parameter(torch.randn(10))
    gpu = torch.nn.Parameter(cpu.detach().cuda())
    opt_cpu = LearnedOptimizer([cpu], net=quadratic_net)
    opt_gpu = LearnedOptimizer([gpu], net=quadratic_net)
    for opt, p in ((opt_cpu, cpu), (opt_gpu, gpu)):
        p.grad = torch.ones_like(p)
        opt.step()
    torch.testing.assert_close(gpu.detach().cpu(), cpu.detach(), rtol=1e-4, atol=1e-6)


def _three_params(seed: int = 0) -> list[torch.nn.Parameter]:
    torch.manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(s)) for s in ((3, 4), (5,), (2, 2, 2))]


def test_fused_step_is_one_lstm_call_over_the_concatenated_gradients(quadratic_net):
    params = _three_params()
    start = [p.detach().clone() for p in params]
    grads = [torch.randn_like(p) for p in params]
    opt = LearnedOptimizer(params, net=quadratic_net)
    for p, g in zip(params, grads):
        p.grad = g
    opt.step()

    n = sum(p.numel() for p in params)
    h, c = quadratic_net.initial_state(n)
    update, h_new, _ = quadratic_net(torch.cat([g.reshape(-1) for g in grads]), h, c)
    for p, s, piece in zip(params, start, update.split([p.numel() for p in params])):
        assert torch.equal(p.detach(), s + piece.view_as(s))
    offset = 0
    for p in params:  # each parameter's state is its slice of the one call's state
        assert torch.equal(opt.state[p]["h"], h_new[..., offset : offset + p.numel()])
        offset += p.numel()


def test_fused_and_per_tensor_steps_agree_when_gradients_come_and_go(quadratic_net):
    # Steps where a parameter has no gradient leave its state alone; the fused buffer re-packs.
    a, b = _three_params(1), _three_params(1)
    fused = LearnedOptimizer(a, net=quadratic_net)
    single = LearnedOptimizer(b, net=quadratic_net, fused=False)
    torch.manual_seed(2)
    for present in ([0, 1, 2], [0, 2], [1], [0, 1, 2], [0, 1, 2]):
        grads = {i: torch.randn_like(a[i]) for i in present}
        for params, opt in ((a, fused), (b, single)):
            opt.zero_grad()
            for i, g in grads.items():
                params[i].grad = g.clone()
            opt.step()
    for pa, pb in zip(a, b):
        torch.testing.assert_close(pa.detach(), pb.detach(), rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(fused.state[pa]["h"], single.state[pb]["h"], rtol=1e-6, atol=1e-7)
        assert fused.state[pa]["step"] == single.state[pb]["step"]
    assert [int(fused.state[p]["step"]) for p in a] == [4, 4, 4]


def test_fused_state_dict_hands_out_contiguous_copies_and_reloads(quadratic_net):
    params = _three_params()
    opt = LearnedOptimizer([{"params": params[:2], "lr": 0.5}, {"params": params[2:]}], net=quadratic_net)
    for p in params:
        p.grad = torch.ones_like(p)
    opt.step()
    saved = opt.state_dict()
    assert all(s["h"].is_contiguous() and s["c"].is_contiguous() for s in saved["state"].values())
    assert not opt.state[params[0]]["h"].is_contiguous()  # a view into the flat buffer (2 layers)
    snapshot = {k: v.clone() for k, v in optimizer_tensors(saved).items()}
    opt.step()
    expected = [p.detach().clone() for p in params]

    copies = _three_params()
    for p in copies:
        p.grad = torch.ones_like(p)
    first = LearnedOptimizer([{"params": copies[:2], "lr": 0.5}, {"params": copies[2:]}], net=quadratic_net)
    first.step()  # the same first step: the copies now hold the parameters as they were when saved
    restored = LearnedOptimizer([{"params": copies[:2], "lr": 0.5}, {"params": copies[2:]}], net=quadratic_net)
    restored.load_state_dict(load_optimizer_tensors(snapshot))
    restored.step()
    for p, e in zip(copies, expected):
        assert torch.equal(p.detach(), e)


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                    reason="torch.compile on CPU needs a C compiler")
def test_compiled_step_matches_the_eager_step(quadratic_net):
    # 5000 coordinates: a full 4096 block and a shorter one, so the dynamic shape is exercised.
    torch.manual_seed(0)
    eager_p = torch.nn.Parameter(torch.randn(5000))
    compiled_p = torch.nn.Parameter(eager_p.detach().clone())
    eager = LearnedOptimizer([eager_p], net=quadratic_net)
    compiled = LearnedOptimizer([compiled_p], net=quadratic_net, compile=True)
    for _ in range(3):
        grad = torch.randn(5000)
        for p, opt in ((eager_p, eager), (compiled_p, compiled)):
            p.grad = grad.clone()
            opt.step()
    torch.testing.assert_close(compiled_p.detach(), eager_p.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(compiled.state[compiled_p]["c"], eager.state[eager_p]["c"], rtol=1e-5, atol=1e-6)


def test_gpu_steps_run_in_large_blocks_that_bound_the_temporaries():
    # CPU: cache-sized blocks; any other device: blocks of accelerator_chunk_size (memory bound only).
    net = CoordinatewiseLSTM(LSTMOptimizerConfig(chunk_size=64, accelerator_chunk_size=1 << 10))
    assert net._chunk_size(torch.zeros(3)) == 64
    assert net._chunk_size(torch.zeros(3, device="meta")) == 1 << 10
    with pytest.raises(UsageError, match="accelerator_chunk_size"):
        LSTMOptimizerConfig(accelerator_chunk_size=0)
    # Blocks change rounding at most: the same step with one block and with several.
    torch.manual_seed(0)
    grad = torch.randn(300)
    one = CoordinatewiseLSTM(LSTMOptimizerConfig(chunk_size=None))
    many = CoordinatewiseLSTM(LSTMOptimizerConfig(chunk_size=64))
    many.load_state_dict(one.state_dict())
    (h1, c1), (h2, c2) = one.initial_state(300), many.initial_state(300)
    torch.testing.assert_close(one.update_(grad, h1, c1), many.update_(grad, h2, c2), rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(h1, h2, rtol=1e-6, atol=1e-8)


def test_a_step_that_cannot_compile_says_what_to_do(quadratic_net, monkeypatch):
    def broken(*args, **kwargs):  # what torch.compile raises without a C++ compiler (its __init__ varies by version)
        failed = torch._dynamo.exc.BackendCompilerFailed.__new__(torch._dynamo.exc.BackendCompilerFailed)
        Exception.__init__(failed, "InvalidCxxCompiler: No working C++ compiler found")
        raise failed

    p = torch.nn.Parameter(torch.randn(5))
    opt = LearnedOptimizer([p], net=quadratic_net, compile=True)
    monkeypatch.setattr(opt, "_block_fn", broken)
    p.grad = torch.ones(5)
    with pytest.raises(UsageError, match="compile=False"):
        opt.step()
