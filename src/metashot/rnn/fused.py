"""The Phased LSTM time loop with a hand-written backward pass (``backend="fused"``).

Autograd records ~15 nodes per time step for :func:`metashot.rnn.functional.gated_lstm_recurrence`
and replays them one by one backwards. Here the forward loop runs without recording, saves the
activations, and the backward loop does only what is inherently sequential (the ``dgates @ W_hh``
chain and the cell-gradient carry); every factor that does not depend on the incoming gradient is
computed for all steps at once before the loop, and ``dW_hh`` and the gradient of the openness
``k`` after it, as single batched operations. Same math, checked against autograd (gradcheck, float64).

Equations (gate order i, f, g, o as ``nn.LSTM``), per step t with openness k::

    i, f, o = sigmoid(.), g = tanh(.)    of  a_t = input_gates_t + h_{t-1} W_hh^T
    c~ = f c_{t-1} + i g;   h~ = o tanh(c~)
    c_t = c_{t-1} + k (c~ - c_{t-1});   h_t = h_{t-1} + k (h~ - h_{t-1})
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable


class _GatedLSTMRecurrence(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, input_gates: Tensor, openness: Tensor, h0: Tensor, c0: Tensor, weight_hh: Tensor):  # type: ignore[override]
        steps, batch, four_h = input_gates.shape
        hidden = four_h // 4
        hs = input_gates.new_empty(steps + 1, batch, hidden)  # hs[t] = h_{t-1}; hs[T] = h_T
        cs = input_gates.new_empty(steps + 1, batch, hidden)
        acts = input_gates.new_empty(steps, batch, four_h)  # sigmoid(i f . o), tanh(g)
        cand = input_gates.new_empty(steps, batch, hidden)  # c~
        tanh_cand = input_gates.new_empty(steps, batch, hidden)  # tanh(c~)
        hs[0], cs[0] = h0, c0
        w_t = weight_hh.t()
        for t in range(steps):
            pre = torch.addmm(input_gates[t], hs[t], w_t)  # (B, 4H)
            act = acts[t]
            torch.sigmoid(pre, out=act)
            torch.tanh(pre[:, 2 * hidden : 3 * hidden], out=act[:, 2 * hidden : 3 * hidden])
            i, f, g, o = act.chunk(4, dim=1)
            torch.addcmul(f * cs[t], i, g, out=cand[t])
            torch.tanh(cand[t], out=tanh_cand[t])
            k = openness[t]
            torch.lerp(cs[t], cand[t], k, out=cs[t + 1])
            torch.lerp(hs[t], o * tanh_cand[t], k, out=hs[t + 1])
        ctx.save_for_backward(openness, weight_hh, hs, cs, acts, cand, tanh_cand)
        return hs[1:].clone(), hs[steps].clone(), cs[steps].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: Tensor, grad_h: Tensor, grad_c: Tensor):  # type: ignore[override]
        openness, weight_hh, hs, cs, acts, cand, tanh_cand = ctx.saved_tensors
        steps, batch, four_h = acts.shape
        hidden = four_h // 4
        a = acts.view(steps, batch, 4, hidden)
        i, f, g, o = a[:, :, 0], a[:, :, 1], a[:, :, 2], a[:, :, 3]
        c_prev = cs[:-1]
        k = openness
        # Factors independent of the incoming gradient, for all steps at once:
        #   d c~ = k (dc + dh * o (1 - tanh^2 c~));  d pre_{i,f,g} = d c~ * P;  d pre_o = dh * Q
        dtanh = o * (1 - tanh_cand * tanh_cand)  # (T, B, H)
        p = torch.stack([g * i * (1 - i), c_prev * f * (1 - f), i * (1 - g * g)], dim=2)  # (T, B, 3, H)
        q = k * tanh_cand * o * (1 - o)  # (T, B, H)
        one_minus_k = 1 - k
        grad_gates = acts.new_empty(steps, batch, four_h)
        dhs = acts.new_empty(steps, batch, hidden)  # dL/dh_t (total) for every t
        dcs = acts.new_empty(steps, batch, hidden)
        dh = grad_h if grad_h is not None else acts.new_zeros(batch, hidden)
        dc = grad_c if grad_c is not None else acts.new_zeros(batch, hidden)
        for t in range(steps - 1, -1, -1):
            if grad_out is not None:
                dh = dh + grad_out[t]
            dhs[t], dcs[t] = dh, dc
            dcand = k[t] * torch.addcmul(dc, dh, dtanh[t])  # (B, H)
            gg = grad_gates[t].view(batch, 4, hidden)
            torch.mul(dcand.unsqueeze(1), p[t], out=gg[:, :3])
            torch.mul(dh, q[t], out=gg[:, 3])
            dc = torch.addcmul(dc * one_minus_k[t], dcand, f[t])
            dh = torch.addmm(dh * one_minus_k[t], grad_gates[t], weight_hh)
        h_cand = o * tanh_cand
        grad_k = dhs * (h_cand - hs[:-1]) + dcs * (cand - c_prev)
        grad_w = grad_gates.reshape(-1, four_h).t() @ hs[:-1].reshape(-1, hidden)  # (4H, H)
        return grad_gates, grad_k, dh, dc, grad_w


@torch.no_grad()
def _forward_only(input_gates: Tensor, openness: Tensor, h: Tensor, c: Tensor, weight_hh: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The same loop keeping nothing but the outputs (evaluation: no (T, B, 4H) activation buffers)."""
    hidden = h.shape[-1]
    outputs = input_gates.new_empty(input_gates.shape[0], h.shape[0], hidden)
    w_t = weight_hh.t()
    for t in range(input_gates.shape[0]):
        pre = torch.addmm(input_gates[t], h, w_t)
        act = torch.sigmoid(pre)
        i, f, o = act[:, :hidden], act[:, hidden : 2 * hidden], act[:, 3 * hidden :]
        cand = torch.addcmul(f * c, i, torch.tanh(pre[:, 2 * hidden : 3 * hidden]))
        c = torch.lerp(c, cand, openness[t])
        h = torch.lerp(h, o * torch.tanh(cand), openness[t])
        outputs[t] = h
    return outputs, h, c


def gated_lstm_recurrence_fused(
    input_gates: Tensor, openness: Tensor, hidden: Tensor, cell: Tensor, weight_hh: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """Same contract as :func:`metashot.rnn.functional.gated_lstm_recurrence` (time-major):
    ``input_gates (T, B, 4H)``, ``openness (T, B, H)``, ``hidden, cell (B, H)``, ``weight_hh (4H, H)``
    -> ``(outputs (T, B, H), h_T, c_T)``. Not twice differentiable."""
    args = (input_gates, openness, hidden, cell, weight_hh)
    if not (torch.is_grad_enabled() and any(a.requires_grad for a in args)):
        return _forward_only(*args)
    return _GatedLSTMRecurrence.apply(input_gates.contiguous(), openness.contiguous(), hidden, cell, weight_hh)
