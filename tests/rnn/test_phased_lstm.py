import math

import pytest
import torch
from torch import nn

from metashot.errors import TimestampError, UsageError
from metashot.rnn import PhasedLSTM, PhasedLSTMCell


def copy_lstm_weights(plstm: PhasedLSTM, lstm: nn.LSTM) -> None:
    with torch.no_grad():
        for layer, cell in enumerate(plstm.cells):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(cell, name).copy_(getattr(lstm, f"{name}_l{layer}"))


def test_cell_with_gate_forced_open_equals_nn_lstmcell_with_copied_weights():
    cell = PhasedLSTMCell(3, 5, time_gate=False, dtype=torch.float64)
    reference = nn.LSTMCell(3, 5, dtype=torch.float64)
    reference.load_state_dict({k: v for k, v in cell.state_dict().items() if k in reference.state_dict()})
    x, h, c = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 5, dtype=torch.float64), torch.randn(4, 5, dtype=torch.float64)
    torch.testing.assert_close(cell(x, torch.full((4,), 17.0), (h, c)), reference(x, (h, c)))


@pytest.mark.parametrize("batch_first", [False, True])
def test_layer_with_gate_forced_open_equals_nn_lstm_with_copied_weights(batch_first):
    plstm = PhasedLSTM(3, 6, num_layers=2, batch_first=batch_first, time_gate=False, dtype=torch.float64)
    lstm = nn.LSTM(3, 6, num_layers=2, batch_first=batch_first, dtype=torch.float64)
    copy_lstm_weights(plstm, lstm)
    shape = (4, 9, 3) if batch_first else (9, 4, 3)
    x = torch.randn(*shape, dtype=torch.float64)
    times = torch.arange(9.0).expand(4, 9) if batch_first else torch.arange(9.0).unsqueeze(1).expand(9, 4)
    hx = (torch.randn(2, 4, 6, dtype=torch.float64), torch.randn(2, 4, 6, dtype=torch.float64))
    out, (h_n, c_n) = plstm(x, times, hx)
    ref_out, (ref_h, ref_c) = lstm(x, hx)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close((h_n, c_n), (ref_h, ref_c))


def test_layer_equals_its_cell_applied_step_by_step():
    plstm = PhasedLSTM(2, 5, period_init_range=(2.0, 8.0), dtype=torch.float64)
    x = torch.randn(12, 3, 2, dtype=torch.float64)
    times = torch.cumsum(torch.rand(12, 3, dtype=torch.float64), 0)
    out, (h_n, c_n) = plstm(x, times)
    cell = plstm.cells[0]
    h = c = torch.zeros(3, 5, dtype=torch.float64)
    for t in range(12):
        h, c = cell(x[t], times[t], (h, c))
        torch.testing.assert_close(out[t], h)
    torch.testing.assert_close((h_n[0], c_n[0]), (h, c))


def test_shapes_mirror_nn_lstm_including_unbatched_input():
    plstm = PhasedLSTM(1, 7, num_layers=3, batch_first=True, dropout=0.2)
    out, (h_n, c_n) = plstm(torch.randn(2, 10, 1), torch.arange(10.0).expand(2, 10))
    assert out.shape == (2, 10, 7) and h_n.shape == c_n.shape == (3, 2, 7)
    out, (h_n, c_n) = plstm(torch.randn(10, 1), torch.arange(10.0))
    assert out.shape == (10, 7) and h_n.shape == (3, 7)
    out, _ = plstm(torch.randn(10, 1), torch.arange(10.0), (h_n, c_n))
    assert out.shape == (10, 7)
    out, _ = plstm(torch.randn(4, 10, 1), torch.arange(10.0))  # one time axis shared by the batch
    assert out.shape == (4, 10, 7)


def test_padded_batch_gives_the_same_final_state_as_each_sequence_alone():
    plstm = PhasedLSTM(1, 4, batch_first=True, period_init_range=(1.0, 5.0), dtype=torch.float64)
    lengths = torch.tensor([7, 3, 5])
    x = torch.randn(3, 7, 1, dtype=torch.float64)
    times = torch.cumsum(torch.rand(3, 7, dtype=torch.float64), 1)
    times[1, 3:] = float("nan")  # padded timestamps are ignored, even NaN
    out, (h_n, c_n) = plstm(x, times, lengths=lengths)
    for b, n in enumerate(lengths.tolist()):
        alone, (h_b, c_b) = plstm(x[b, :n], times[b, :n])
        torch.testing.assert_close(out[b, :n], alone)
        assert (out[b, n:] == 0).all()
        torch.testing.assert_close((h_n[:, b], c_n[:, b]), (h_b, c_b))
    mask = torch.arange(7).unsqueeze(0) < lengths.unsqueeze(1)
    out_mask, _ = plstm(x, times, mask=mask)
    torch.testing.assert_close(out_mask, out)


@pytest.mark.parametrize(
    ("bad", "message"),
    [(float("nan"), "must be finite"), (float("inf"), "must be finite"), (-5.0, "go backwards")],
)
def test_bad_timestamps_are_refused_with_a_clear_error(bad, message):
    plstm = PhasedLSTM(1, 3)
    times = torch.arange(6.0).unsqueeze(1).repeat(1, 2)
    times[4, 1] = bad
    with pytest.raises(TimestampError, match=message):
        plstm(torch.randn(6, 2, 1), times)


def test_equal_timestamps_are_allowed_and_cell_refuses_nan():
    plstm = PhasedLSTM(1, 3)
    plstm(torch.randn(4, 1, 1), torch.tensor([[0.0], [1.0], [1.0], [2.0]]))
    with pytest.raises(TimestampError):
        PhasedLSTMCell(1, 3)(torch.randn(2, 1), torch.tensor([1.0, float("nan")]))


def test_time_parameters_are_initialised_as_in_the_paper():
    cell = PhasedLSTMCell(1, 2000, r_on=0.05, period_init_range=(math.e, math.e**3))
    log_tau = cell.period.detach().log()
    assert log_tau.min() >= 1 - 1e-5 and log_tau.max() <= 3 + 1e-5
    assert abs(log_tau.mean().item() - 2.0) < 0.05  # log-uniform: mean of U(1, 3); 2000 draws, sd ~0.013
    assert (cell.shift >= 0).all() and (cell.shift <= cell.period).all()
    assert (cell.r_on == 0.05).all()


def test_constrain_keeps_period_positive_and_r_on_in_range():
    cell = PhasedLSTMCell(1, 4)
    with torch.no_grad():
        cell.period.copy_(torch.tensor([-3.0, 0.0, 1e-9, 5.0]))
        cell.r_on.copy_(torch.tensor([-0.1, 0.0, 2.0, 0.5]))
    assert (cell.effective_period() > 0).all() and (cell.effective_r_on() > 0).all()
    cell.constrain_()
    assert (cell.period > 0).all() and (cell.r_on > 0).all() and (cell.r_on <= 1).all()
    torch.testing.assert_close(cell.period[[0, 3]], torch.tensor([3.0, 5.0]))


def test_leak_applies_in_training_and_is_zero_in_eval():
    plstm = PhasedLSTM(1, 50, leak=1e-3)
    times = torch.linspace(0, 100, 400)
    assert (plstm.openness(times) > 0).all()  # training: closed neurons leak
    plstm.eval()
    k = plstm.openness(times)
    assert (k == 0).float().mean() > 0.5  # r_on = 0.05: closed most of the time


def test_gradients_reach_every_parameter_including_time_parameters():
    plstm = PhasedLSTM(2, 8, num_layers=2, r_on=0.5, dtype=torch.float64)
    times = torch.cumsum(torch.rand(20, 3, dtype=torch.float64), 0)
    out, (h_n, _) = plstm(torch.randn(20, 3, 2, dtype=torch.float64), times)
    (out.sum() + h_n.sum()).backward()
    for name, p in plstm.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_torchscript_backend_matches_the_plain_loop():
    torch.manual_seed(2)
    eager = PhasedLSTM(1, 6, backend="eager", dtype=torch.float64)
    script = PhasedLSTM(1, 6, backend="script", dtype=torch.float64)
    script.load_state_dict(eager.state_dict())
    x, times = torch.randn(15, 2, 1, dtype=torch.float64), torch.arange(15.0).unsqueeze(1).expand(15, 2)
    torch.testing.assert_close(script(x, times)[0], eager(x, times)[0])


def test_invalid_arguments_raise_usage_errors():
    with pytest.raises(UsageError, match="r_on"):
        PhasedLSTM(1, 4, r_on=1.5)
    with pytest.raises(UsageError, match="backend"):
        PhasedLSTM(1, 4, backend="cuda-magic")
    with pytest.raises(UsageError, match="times must have"):
        PhasedLSTM(1, 4)(torch.randn(5, 2, 1), torch.arange(4.0))


def test_fused_recurrence_matches_autograd_and_passes_gradcheck():
    from metashot.rnn.functional import gated_lstm_recurrence
    from metashot.rnn.fused import gated_lstm_recurrence_fused

    g = torch.Generator().manual_seed(6)
    steps, batch, hidden = 6, 3, 4

    def rand(*shape, uniform=False):
        draw = torch.rand if uniform else torch.randn
        return draw(*shape, generator=g, dtype=torch.float64).requires_grad_()

    args = (rand(steps, batch, 4 * hidden), rand(steps, batch, hidden, uniform=True), rand(batch, hidden),
            rand(batch, hidden), rand(4 * hidden, hidden))
    for fused, reference in zip(gated_lstm_recurrence_fused(*args), gated_lstm_recurrence(*args)):
        torch.testing.assert_close(fused, reference)
    assert torch.autograd.gradcheck(gated_lstm_recurrence_fused, args)


def test_fused_and_eager_layers_give_the_same_gradients():
    torch.manual_seed(3)
    fused = PhasedLSTM(2, 5, num_layers=2, backend="fused", r_on=0.4, dtype=torch.float64)
    eager = PhasedLSTM(2, 5, num_layers=2, backend="eager", r_on=0.4, dtype=torch.float64)
    eager.load_state_dict(fused.state_dict())
    x, times = torch.randn(10, 3, 2, dtype=torch.float64), torch.cumsum(torch.rand(10, 3, dtype=torch.float64), 0)
    for model in (fused, eager):
        out, (h_n, c_n) = model(x, times, lengths=torch.tensor([10, 4, 7]))
        (out.square().sum() + h_n.sum() + c_n.sum()).backward()
    for (name, a), b in zip(fused.named_parameters(), eager.parameters()):
        torch.testing.assert_close(a.grad, b.grad, msg=name)


def test_fused_forward_without_gradients_equals_the_training_path():
    plstm = PhasedLSTM(1, 6, r_on=0.3, dtype=torch.float64)
    x, times = torch.randn(12, 2, 1, dtype=torch.float64), torch.arange(12.0).unsqueeze(1).expand(12, 2)
    with_grad = plstm(x, times)
    with torch.no_grad():
        without = plstm(x, times)
    torch.testing.assert_close(without[0], with_grad[0].detach())
    torch.testing.assert_close(without[1], tuple(t.detach() for t in with_grad[1]))
