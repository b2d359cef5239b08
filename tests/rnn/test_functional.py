import math

import pytest
import torch

from metashot.rnn import functional as F


def naive_gate(t: float, period: float, shift: float, r_on: float, leak: float) -> float:
    """Eq. (7) written out with Python's % (the sign follows the divisor)."""
    phi = ((t - shift) % period) / period
    if phi < r_on / 2:
        return 2 * phi / r_on
    if phi < r_on:
        return 2 - 2 * phi / r_on
    return leak * phi


def test_phase_is_in_unit_interval_for_negative_and_positive_times():
    times = torch.linspace(-50, 50, 1001, dtype=torch.float64)
    phi = F.phase(times, torch.tensor(7.3, dtype=torch.float64), torch.tensor(2.1, dtype=torch.float64))
    assert (phi >= 0).all() and (phi < 1).all()
    expected = torch.tensor([((t - 2.1) % 7.3) / 7.3 for t in times.tolist()], dtype=torch.float64)
    diff = (phi - expected).abs()
    circular = torch.minimum(diff, 1 - diff)  # at exact wrap points rounding may give 0 vs 0.999..
    assert circular.max() < 1e-9


@pytest.mark.parametrize("leak", [0.0, 1e-3])
def test_time_gate_matches_the_naive_equation(leak):
    g = torch.Generator().manual_seed(1)
    times = torch.rand(200, 1, generator=g, dtype=torch.float64) * 200 - 100
    period = torch.rand(8, generator=g, dtype=torch.float64) * 10 + 0.5
    shift = torch.rand(8, generator=g, dtype=torch.float64) * period
    r_on = torch.rand(8, generator=g, dtype=torch.float64) * 0.5 + 0.05
    k = F.time_gate(times, period, shift, r_on, leak)
    expected = torch.tensor(
        [[naive_gate(t, p, s, r, leak) for p, s, r in zip(period.tolist(), shift.tolist(), r_on.tolist())]
         for t in times[:, 0].tolist()],
        dtype=torch.float64,
    )
    torch.testing.assert_close(k, expected)
    assert (k >= 0).all() and (k <= 1).all()


def test_time_gate_peaks_at_one_in_the_middle_of_the_open_phase():
    period, shift, r_on = torch.tensor([10.0]), torch.tensor([0.0]), torch.tensor([0.2])
    k = F.time_gate(torch.tensor([[1.0], [0.5], [1.5], [5.0]]), period, shift, r_on, 0.0)[:, 0]
    torch.testing.assert_close(k, torch.tensor([1.0, 0.5, 0.5, 0.0]))


def test_time_gate_gradcheck_in_float64():
    g = torch.Generator().manual_seed(3)
    # Points chosen away from the kinks (phi = 0, r_on/2, r_on) where the gate is not differentiable.
    period = torch.tensor([4.0, 7.0, 11.0], dtype=torch.float64, requires_grad=True)
    shift = torch.tensor([0.3, 1.1, 2.0], dtype=torch.float64, requires_grad=True)
    r_on = torch.tensor([0.3, 0.5, 0.4], dtype=torch.float64, requires_grad=True)
    times = (torch.rand(6, 1, generator=g, dtype=torch.float64) * 30).requires_grad_()
    assert torch.autograd.gradcheck(lambda *a: F.time_gate(*a, 1e-3), (times, period, shift, r_on))


def test_gated_lstm_step_gradcheck_in_float64():
    g = torch.Generator().manual_seed(4)
    batch, hidden = 3, 4

    def rand(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64).requires_grad_()

    args = (rand(batch, 4 * hidden), torch.rand(batch, hidden, generator=g, dtype=torch.float64).requires_grad_(),
            rand(batch, hidden), rand(batch, hidden), rand(4 * hidden, hidden))
    assert torch.autograd.gradcheck(F.gated_lstm_step, args)


def test_closed_gate_keeps_the_state_and_open_gate_gives_the_lstm_update():
    g = torch.Generator().manual_seed(5)
    gates, h, c, w = (torch.randn(2, 12, generator=g), torch.randn(2, 3, generator=g),
                      torch.randn(2, 3, generator=g), torch.randn(12, 3, generator=g))
    h0, c0 = F.gated_lstm_step(gates, torch.zeros(2, 3), h, c, w)
    torch.testing.assert_close((h0, c0), (h, c))
    h1, c1 = F.gated_lstm_step(gates, torch.ones(2, 3), h, c, w)
    torch.testing.assert_close((h1, c1), F.lstm_candidate(gates, h, c, w))


def test_phase_period_gradient_is_finite_for_large_times():
    period = torch.tensor([math.e], requires_grad=True)
    F.phase(torch.tensor([1e4]), period, torch.tensor([0.0])).sum().backward()
    assert torch.isfinite(period.grad).all()
