"""The functional inner loop and its truncated-BPTT meta-loss (paper, Section 2 and Eq. 3).

``unroll`` runs the optimizee for a few steps under the learned optimizer, keeping the graph from
the optimizer's weights φ to every θ_t, and returns L(φ) = Σ_t w_t f(θ_t), w_t = 1 as in the paper
(or growing with t, ``weighting="linear"``: :func:`step_weight`). Following
the paper, the optimizee's gradients ∇_t are treated as constants (``detach``: ∂∇_t/∂φ = 0); with
``second_order=True`` they are kept (``create_graph=True``). Truncation (learned_optimization's
``truncated_step``) is done by :meth:`UnrollState.detached` between unrolls.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from metashot.optim.config import LOSS_WEIGHTINGS
from metashot.optim.coordinatewise import CoordinatewiseLSTM
from metashot.optim.tasks import Problem

# ---------------------------------------------------------------------------------------------------


@dataclass
class UnrollState:
    """Where an optimizee is: parameters θ_t, per-parameter LSTM states (and gradient moments, for an
    optimizer with ``preprocess="adam"``; empty otherwise), and the step t."""

    params: dict[str, Tensor]
    h: dict[str, Tensor]  # name -> (num_layers, hidden_size, numel): coordinates last
    c: dict[str, Tensor]
    step: int = 0
    moments: dict[str, Tensor] = field(default_factory=dict)  # name -> (3, numel), same keys as h

    def detached(self) -> UnrollState:
        """Cut the graph here (truncation of BPTT)."""
        return UnrollState(
            params={k: v.detach() for k, v in self.params.items()},
            h={k: v.detach() for k, v in self.h.items()},
            c={k: v.detach() for k, v in self.c.items()},
            step=self.step,
            moments={k: v.detach() for k, v in self.moments.items()},
        )


FUSED = "*"  # key of the single LSTM state of all coordinates when parameters are fused


def _fused_key(index: int, num_lstms: int) -> str:
    """``"*"`` with one shared LSTM (as before), ``"*0"``, ``"*1"``, ... with separate LSTMs."""
    return FUSED if num_lstms == 1 else f"{FUSED}{index}"


def _fused_names(net: CoordinatewiseLSTM, names: list[str]) -> dict[int, list[str]]:
    """Parameter names per LSTM index, in parameter order."""
    groups: dict[int, list[str]] = {}
    for name in names:
        groups.setdefault(net.lstm_index(name), []).append(name)
    return groups


def init_state(net: CoordinatewiseLSTM, params: dict[str, Tensor], *, fused: bool = False) -> UnrollState:
    """Fresh optimizer state (zeros) for ``params`` at step 0.

    With ``fused=True`` the coordinates of all tensors share one state ``h[FUSED]`` and one LSTM
    call per step (same math, fewer kernel launches: faster on GPU; float rounding may differ from
    the per-tensor calls that :class:`~metashot.optim.learned.LearnedOptimizer` makes). With
    separate LSTMs (``net.config.lstm_groups``) the fusion is per LSTM: keys ``"*0"``, ``"*1"``, ...
    """
    h, c, moments = {}, {}, {}
    sizes: dict[str, tuple[int, torch.device]] = {}
    if fused:
        device = next(iter(params.values())).device
        for index, names in _fused_names(net, list(params)).items():
            sizes[_fused_key(index, net.num_lstms)] = (sum(params[k].numel() for k in names), device)
    else:
        sizes = {name: (value.numel(), value.device) for name, value in params.items()}
    for key, (n, device) in sizes.items():
        h[key], c[key] = net.initial_state(n, device=device)
        if net.uses_moments:
            moments[key] = net.initial_moments(n, device=device)
    return UnrollState(params=dict(params), h=h, c=c, step=0, moments=moments)


def optimizer_step(
    net: CoordinatewiseLSTM, state: UnrollState, grads: dict[str, Tensor]
) -> UnrollState:
    """θ_{t+1} = θ_t + m(∇_t, h_t; φ), one parameter tensor at a time (as LearnedOptimizer does).

    Each tensor goes through the LSTM that ``net.lstm_index(name)`` names (always 0 with one LSTM).
    """
    params: dict[str, Tensor] = {}
    h: dict[str, Tensor] = {}
    c: dict[str, Tensor] = {}
    moments: dict[str, Tensor] = {}
    dtype = net.dtype

    def call(grad: Tensor, key: str, index: int) -> Tensor:
        """One LSTM call on the state under ``key``: stores the new h, c (and moments); returns the update."""
        if net.uses_moments:
            update, h[key], c[key], moments[key] = net(grad, state.h[key], state.c[key], index,
                                                       moments=state.moments[key])
        else:
            update, h[key], c[key] = net(grad, state.h[key], state.c[key], index)
        return update

    if any(key.startswith(FUSED) for key in state.h):
        for index, names in _fused_names(net, list(state.params)).items():
            key = _fused_key(index, net.num_lstms)
            flat = torch.cat([grads[k].reshape(-1).to(dtype) for k in names])  # (N,)
            update = call(flat, key, index)
            for name, piece in zip(names, update.split([state.params[k].numel() for k in names])):
                value = state.params[name]
                params[name] = value + piece.view_as(value).to(value.dtype)
        params = {name: params[name] for name in state.params}  # keep the parameter order
    else:
        for name, value in state.params.items():
            grad = grads[name].reshape(-1).to(dtype)
            params[name] = value + call(grad, name, net.lstm_index(name)).view_as(value).to(value.dtype)
    return UnrollState(params=params, h=h, c=c, step=state.step + 1, moments=moments)


def step_weight(t: int, horizon: int, weighting: str = "uniform") -> float:
    """w_t of the meta-loss Σ_t w_t f(θ_t) for the loss at step ``t`` (0 = the initial θ) of a ``horizon``.

    ``"uniform"``: w_t = 1 (the paper). ``"linear"``: w_t = 2 (t + 1) / (horizon + 1), which averages to 1
    over t = 0 … horizon − 1 and puts 3x more weight on the second half of the horizon than on the first:
    an objective that rewards progress late in a long run, where a uniform sum is dominated by the
    large early losses. Steps past the horizon keep growing linearly.
    """
    if weighting == "uniform":
        return 1.0
    if weighting == "linear":
        return 2.0 * (t + 1) / (horizon + 1)
    raise ValueError(f"unknown weighting {weighting!r}; use one of {LOSS_WEIGHTINGS}")


def unroll(
    net: CoordinatewiseLSTM,
    problem: Problem,
    state: UnrollState,
    steps: int,
    *,
    second_order: bool = False,
    include_final: bool = True,
    weighting: str = "uniform",
    horizon: int | None = None,
) -> tuple[Tensor, list[float], UnrollState]:
    """Run ``steps`` optimizer steps from ``state``; return ``(meta_loss, losses, new_state)``.

    Args:
        net: the optimizer; its weights receive the meta-gradient of ``meta_loss``.
        problem: the optimizee.
        state: starting point; call ``state.detached()`` first to truncate.
        steps: number of updates (the truncation length T, 20 in the paper).
        second_order: keep ∂∇_t/∂φ (the paper drops it).
        include_final: add f(θ) after the last update, as DeepMind's released code does.
        weighting: w_t of each loss, see :func:`step_weight` (``t`` = ``state.step``, the step within the
            horizon, so truncated unrolls weight their losses by where they are in the horizon).
        horizon: the horizon of :func:`step_weight` (default: ``steps``).

    Returns:
        ``meta_loss``: scalar Σ w_t f_t(θ_t) over the visited θ (differentiable in φ); ``losses``: the
        float f_t(θ_t) before each update (the optimizee's training curve); ``new_state``.
    """
    meta_loss = torch.zeros((), device=next(iter(state.params.values())).device)
    losses: list[Tensor] = []
    horizon = steps if horizon is None else horizon
    step_weight(0, horizon, weighting)  # an unknown weighting fails before any work
    for _ in range(steps):
        params = {
            k: v if v.requires_grad else v.detach().requires_grad_(True) for k, v in state.params.items()
        }
        state = UnrollState(params=params, h=state.h, c=state.c, step=state.step, moments=state.moments)
        loss = problem.loss(params, state.step)
        names = list(params)
        grads = torch.autograd.grad(
            loss, [params[k] for k in names], create_graph=second_order, retain_graph=True
        )
        grad_dict = {k: g if second_order else g.detach() for k, g in zip(names, grads)}
        meta_loss = meta_loss + loss * step_weight(state.step, horizon, weighting)
        losses.append(loss.detach())  # no .item() here: keeps GPU work asynchronous
        state = optimizer_step(net, state, grad_dict)
    if include_final:
        meta_loss = meta_loss + problem.loss(state.params, state.step) * step_weight(state.step, horizon, weighting)
    return meta_loss, torch.stack(losses).tolist(), state
