"""The pure math: preprocessing formula, LSTM cell vs nn.LSTMCell, chunking, gradcheck."""

from __future__ import annotations

import math

import pytest
import torch

from metashot.optim import CoordinatewiseLSTM, LSTMOptimizerConfig
from metashot.optim.functional import lstm_cell, lstm_update, preprocess_gradients


def _naive_preprocess(value: float, p: float) -> tuple[float, float]:
    # Appendix A of the paper, written out literally for one scalar.
    if abs(value) >= math.exp(-p):
        return math.log(abs(value)) / p, math.copysign(1.0, value) if value != 0 else 0.0
    return -1.0, math.exp(p) * value


@pytest.mark.parametrize("p", [10.0, 5.0])
def test_preprocess_matches_the_papers_formula_elementwise(p):
    values = [0.0, 1e-12, -1e-12, 3e-5, -3e-5, math.exp(-p), -math.exp(-p), 0.5, -2.0, 1e3]
    grad = torch.tensor(values, dtype=torch.float64)
    out = preprocess_gradients(grad, p)
    assert out.shape == (len(values), 2)
    for value, (a, b) in zip(values, out.tolist()):
        ea, eb = _naive_preprocess(value, p)
        assert a == pytest.approx(ea, rel=1e-12, abs=1e-15)
        assert b == pytest.approx(eb, rel=1e-12, abs=1e-15)


def test_preprocess_keeps_leading_shape_and_rejects_bad_p():
    assert preprocess_gradients(torch.randn(3, 4)).shape == (3, 4, 2)
    with pytest.raises(ValueError, match="p must be > 0"):
        preprocess_gradients(torch.randn(3), p=0.0)


def test_preprocess_passes_gradcheck_away_from_the_threshold():
    g = torch.Generator().manual_seed(0)
    grad = torch.cat([torch.rand(4, generator=g) + 0.1, -(torch.rand(4, generator=g) + 0.1), torch.full((2,), 1e-6)])
    grad = grad.double().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: preprocess_gradients(x, 10.0), (grad,))


def test_fused_lstm_cell_equals_torch_lstm_cell():
    torch.manual_seed(0)
    cell = torch.nn.LSTMCell(3, 5).double()
    x, h, c = torch.randn(7, 3).double(), torch.randn(7, 5).double(), torch.randn(7, 5).double()
    weight = torch.cat([cell.weight_ih, cell.weight_hh], dim=1)
    h_new, c_new = lstm_cell(x, h, c, weight, cell.bias_ih + cell.bias_hh)
    h_ref, c_ref = cell(x, (h, c))
    torch.testing.assert_close(h_new, h_ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(c_new, c_ref, rtol=1e-10, atol=1e-12)


def test_chunked_update_equals_one_block():
    torch.manual_seed(0)
    net = CoordinatewiseLSTM(LSTMOptimizerConfig(chunk_size=None))
    grad = torch.randn(1000)
    h, c = torch.randn(2, 20, 1000), torch.randn(2, 20, 1000)
    args = (list(net.weights), list(net.biases), net.out_weight, net.out_bias)
    full = lstm_update(grad, h, c, *args)
    chunked = lstm_update(grad, h, c, *args, chunk_size=64)
    for a, b in zip(full, chunked):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("preprocess", ["log-sign", "none"])
def test_lstm_update_passes_gradcheck_in_float64(preprocess):
    torch.manual_seed(0)
    net = CoordinatewiseLSTM(LSTMOptimizerConfig(hidden_size=3, num_layers=2, preprocess=preprocess)).double()
    grad = (torch.rand(4, dtype=torch.float64) + 0.1).requires_grad_(True)
    h, c = torch.randn(2, 3, 4, dtype=torch.float64), torch.randn(2, 3, 4, dtype=torch.float64)
    weights = [w.detach().clone().requires_grad_(True) for w in net.weights]

    def f(grad, w0, w1):
        update, h_new, c_new = lstm_update(
            grad, h, c, [w0, w1], list(net.biases), net.out_weight, net.out_bias, preprocess=preprocess
        )
        return update, h_new, c_new

    assert torch.autograd.gradcheck(f, (grad, *weights))
