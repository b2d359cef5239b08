"""Pure math of the Phased LSTM (Neil, Pfeiffer & Liu 2016, https://arxiv.org/abs/1610.09513).

Everything here is a function of tensors only (no state, no I/O), so it can be checked with
``torch.autograd.gradcheck`` in float64:

- :func:`phase`      eq. (6):  phi_t = ((t - s) mod tau) / tau, in [0, 1) for every sign of t - s
- :func:`time_gate`  eq. (7):  the openness k_t (rise, fall, leak)
- :func:`gated_lstm_step` / :func:`gated_lstm_recurrence`: eqs. (8)-(9), one LSTM step whose
  cell and hidden updates pass through an openness ``k`` (``k = 1``: an ordinary LSTM step).
"""

from __future__ import annotations

import torch
from torch import Tensor

# ---------------------------------------------------------------------------------------------


def phase(times: Tensor, period: Tensor, shift: Tensor) -> Tensor:
    """Phase of the oscillation, paper eq. (6): ``phi = ((t - s) mod tau) / tau``.

    ``torch.remainder`` follows the sign of the divisor (Python's ``%``), so for ``tau > 0`` the
    result lies in ``[0, 1)`` even when ``t - s`` is negative; ``torch.fmod`` (C's ``%``) would
    give negative phases there and a gate that never opens. Written as ``x - floor(x)`` with
    ``x = (t - s) / tau`` so its gradient is the same away from the wrap points:
    ``d phi / d t = 1 / tau`` and ``d phi / d tau = -(t - s) / tau**2 + floor(x) / tau``.

    Args:
        times: timestamps, any shape broadcastable with ``period`` (e.g. ``(B, T, 1)``).
        period: tau > 0, same unit as ``times`` (e.g. ``(H,)``).
        shift: s, same unit as ``times`` (e.g. ``(H,)``).

    Returns:
        phi in ``[0, 1)``, the broadcast shape (e.g. ``(B, T, H)``).
    """
    x = (times - shift) / period
    return x - torch.floor(x)


def time_gate(times: Tensor, period: Tensor, shift: Tensor, r_on: Tensor, leak: float = 0.0) -> Tensor:
    """Openness ``k_t`` of the Phased LSTM time gate, paper eq. (7).

    ::

        k = 2 phi / r_on        if phi < r_on / 2           (opening)
            2 - 2 phi / r_on    if r_on / 2 <= phi < r_on   (closing)
            leak * phi          otherwise                   (closed, leaking)

    The paper uses ``leak = 1e-3`` while training and ``0`` at evaluation.

    Args:
        times: timestamps, e.g. ``(B, T, 1)``; same unit as ``period``.
        period: tau > 0, e.g. ``(H,)``.
        shift: s, e.g. ``(H,)``.
        r_on: open ratio in ``(0, 1]``, e.g. ``(H,)``.
        leak: alpha, the slope while closed.

    Returns:
        k in ``[0, 1]``, the broadcast shape (e.g. ``(B, T, H)``).
    """
    phi = phase(times, period, shift)
    rising = 2.0 * phi / r_on
    falling = 2.0 - rising
    closed = leak * phi
    return torch.where(phi < 0.5 * r_on, rising, torch.where(phi < r_on, falling, closed))


def lstm_candidate(
    input_gates: Tensor, hidden: Tensor, cell: Tensor, weight_hh: Tensor
) -> tuple[Tensor, Tensor]:
    """The ordinary LSTM update (``c~_t``, ``h~_t``), gate order i, f, g, o as in ``nn.LSTM``.

    Args:
        input_gates: ``W_ih x_t + b_ih + b_hh``, ``(B, 4H)``.
        hidden: h_{t-1}, ``(B, H)``.
        cell: c_{t-1}, ``(B, H)``.
        weight_hh: ``(4H, H)``.

    Returns:
        ``(h~_t, c~_t)``, each ``(B, H)``.
    """
    gates = input_gates + hidden @ weight_hh.t()  # (B, 4H)
    i, f, g, o = gates.chunk(4, dim=-1)
    cell_new = torch.sigmoid(f) * cell + torch.sigmoid(i) * torch.tanh(g)
    hidden_new = torch.sigmoid(o) * torch.tanh(cell_new)
    return hidden_new, cell_new


def gated_lstm_step(
    input_gates: Tensor, openness: Tensor, hidden: Tensor, cell: Tensor, weight_hh: Tensor
) -> tuple[Tensor, Tensor]:
    """One Phased LSTM step, paper eqs. (8)-(9).

    ``c_t = k c~_t + (1 - k) c_{t-1}`` and ``h_t = k h~_t + (1 - k) h_{t-1}``.

    Args:
        input_gates: ``(B, 4H)``; openness: ``(B, H)``; hidden, cell: ``(B, H)``; weight_hh: ``(4H, H)``.

    Returns:
        ``(h_t, c_t)``, each ``(B, H)``.
    """
    hidden_new, cell_new = lstm_candidate(input_gates, hidden, cell, weight_hh)
    cell = cell + openness * (cell_new - cell)
    hidden = hidden + openness * (hidden_new - hidden)
    return hidden, cell


def gated_lstm_recurrence(
    input_gates: Tensor, openness: Tensor, hidden: Tensor, cell: Tensor, weight_hh: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """Run :func:`gated_lstm_step` over time (time-major). The input projection and the gate are
    computed beforehand for all steps at once; only the ``h @ W_hh`` part is sequential.

    Args:
        input_gates: ``(T, B, 4H)``; openness: ``(T, B, H)``; hidden, cell: ``(B, H)``;
            weight_hh: ``(4H, H)``.

    Returns:
        ``(outputs (T, B, H), h_T (B, H), c_T (B, H))``.
    """
    outputs = []
    # unbind, not input_gates[t]: the backward of indexing builds a full (T, B, 4H) zero tensor per
    # step (quadratic in T: 86 s instead of seconds for T = 1000); unbind's backward stacks once.
    for gates_t, openness_t in zip(input_gates.unbind(0), openness.unbind(0)):
        hidden, cell = gated_lstm_step(gates_t, openness_t, hidden, cell, weight_hh)
        outputs.append(hidden)
    return torch.stack(outputs), hidden, cell
