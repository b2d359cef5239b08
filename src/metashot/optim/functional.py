"""Pure math of the coordinate-wise LSTM optimizer (Andrychowicz et al. 2016, arXiv:1606.04474).

Everything here is a function of tensors: no state, no I/O, no classes. Both faces of the learned
optimizer call :func:`lstm_update`: the meta-training unroll (:mod:`metashot.optim.meta`, which
differentiates through it) and :class:`~metashot.optim.learned.LearnedOptimizer` (which runs it
under ``torch.no_grad``). That shared call is what makes the two give identical parameters.

Shapes: ``n`` is the number of coordinates (all elements of one parameter tensor), ``H`` the LSTM
hidden size, ``L`` the number of LSTM layers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

# ---------------------------------------------------------------------------------------------------
# gradient preprocessing (paper, Appendix A)


def _log_sign(grad: Tensor, p: float) -> tuple[Tensor, Tensor]:
    if p <= 0:
        raise ValueError(f"p must be > 0, got {p}")
    threshold = math.exp(-p)
    magnitude = grad.abs()
    large = magnitude >= threshold
    # clamp_min keeps log finite (and its derivative bounded) on the branch torch.where discards.
    log_part = torch.where(large, magnitude.clamp_min(threshold).log() / p, torch.full_like(grad, -1.0))
    sign_part = torch.where(large, torch.sign(grad), grad * math.exp(p))
    return log_part, sign_part


def preprocess_gradients(grad: Tensor, p: float = 10.0) -> Tensor:
    """The paper's log-magnitude / sign preprocessing of each gradient coordinate.

    Appendix A of the paper::

        ∇ ↦ (log|∇| / p, sgn ∇)   if |∇| ≥ e^{-p}
            (-1, e^{p} ∇)          otherwise

    Args:
        grad: gradients, any shape ``(...)``.
        p: the cut-off exponent (10 in the paper; the released code's default config uses 5).

    Returns:
        ``(..., 2)``: the two inputs of the LSTM per coordinate.
    """
    return torch.stack(_log_sign(grad, p), dim=-1)


# The moment state of ``preprocess="adam"``: rows (m, v, w) per coordinate, ``(MOMENT_ROWS, n)``.
MOMENT_ROWS = 3
ADAM_EPS = 1e-8


def adam_features(grad: Tensor, moments: Tensor, beta: float, eps: float = ADAM_EPS) -> tuple[Tensor, Tensor]:
    """RNNprop's inputs (Lv, Chen & Wen 2017, "Learning Gradient Descent: Better Generalization and
    Longer Horizons", Section 3): Adam's bias-corrected moments, normalised.

    ::

        m ← β m + (1 − β) g,   v ← β v + (1 − β) g²,   w ← β w + (1 − β)      (w = 1 − β^t)
        m̂ = m / w,   v̂ = v / w,   features = (m̂ / √(v̂ + ε²),  g / √(v̂ + ε²))

    Both features are invariant to the scale of the gradient (f ↦ a f leaves them unchanged, up to ε), so the
    optimizer sees the same inputs on a problem whose loss is 10x larger. ``w`` is kept per coordinate
    (rather than one step count) so coordinates that joined late are corrected from their own start;
    ``√(v̂ + ε²)`` rather than ``√v̂ + ε`` keeps the derivative finite at ``v = 0``.

    Args:
        grad: ``(n,)`` gradient.
        moments: ``(3, n)`` rows ``(m, v, w)``; zeros before the first step.
        beta: the decay of both moving averages (RNNprop: 0.95).

    Returns:
        ``(features (2, n), new moments (3, n))``.
    """
    m, v, w = moments.unbind(0)
    m = torch.lerp(grad, m, beta)  # β m + (1 − β) g
    v = torch.lerp(grad * grad, v, beta)
    w = w * beta + (1.0 - beta)
    inv = torch.rsqrt(v / w + eps * eps)  # 1 / √(v̂ + ε²)
    return torch.stack([m / w * inv, grad * inv]), torch.stack([m, v, w])


def lstm_input(grad: Tensor, *, preprocess: str, p: float) -> Tensor:
    """Per-coordinate LSTM input of a stateless preprocessing, coordinates last: ``(n,) -> (input_size, n)``
    (2 for "log-sign", 1 for "none"; "adam" keeps state: see :func:`adam_features`)."""
    if preprocess == "log-sign":
        return torch.stack(_log_sign(grad, p), dim=0)
    if preprocess == "none":
        return grad.unsqueeze(0)
    if preprocess == "adam":
        raise ValueError("preprocess 'adam' keeps moment state: call adam_features(grad, moments, beta)")
    raise ValueError(f"unknown preprocess {preprocess!r}; use 'log-sign', 'none' or 'adam'")


# ---------------------------------------------------------------------------------------------------
# the LSTM
#
# Layout: coordinates last. The state of layer l is ``(H, n)`` and a layer's gates ``(4H, n)`` =
# ``W (4H, in + H) @ [x; h] (in + H, n)``, so each gate (i, f, g, o) is a contiguous ``(H, n)`` slab
# and the element-wise work runs over contiguous memory (with coordinates first, the gates were
# strided column slices of an ``(n, 4H)`` matrix). Measured on CPU: one block ~8% faster, meta-training
# 9-18% faster, the deployed step unchanged (results/optim/layout-ab/).


def _gate_scale(hidden_size: int, like: Tensor) -> Tensor:
    """``(4H, 1)``: 1 for the i, f, o gates and 2 for the cell candidate g (see :func:`lstm_cell`)."""
    scale = torch.ones(4, 1, 1, dtype=like.dtype, device=like.device)
    scale[2] = 2.0
    return scale.expand(4, hidden_size, 1).reshape(4 * hidden_size, 1)


def prepare_gates(weight: Tensor, bias: Tensor) -> tuple[Tensor, Tensor]:
    """``(4H, in + H)``, ``(4H,)`` -> the g-doubled ``(4H, in + H)`` weight and ``(4H, 1)`` bias.

    Done once per optimizer step rather than once per block of coordinates (see :func:`lstm_cell`).
    """
    scale = _gate_scale(weight.shape[0] // 4, weight)  # (4H, 1)
    return weight * scale, bias.unsqueeze(1) * scale


def _cell(x: Tensor, h: Tensor, c: Tensor, weight: Tensor, bias: Tensor) -> tuple[Tensor, Tensor]:
    """``x (in, n)``, ``h, c (H, n)``, prepared gates -> ``(h_new, c_new)``, each ``(H, n)``."""
    gates = torch.addmm(bias, weight, torch.cat([x, h], dim=0))  # (4H, n)
    act = torch.sigmoid(gates)  # (4H, n), contiguous
    i, f, g2, o = act.chunk(4, dim=0)  # each a contiguous (H, n) slab; g2 = sigmoid(2 g)
    c_new = torch.addcmul(f * c, i, 2.0 * g2 - 1.0)
    h_new = o * (2.0 * torch.sigmoid(2.0 * c_new) - 1.0)
    return h_new, c_new


def lstm_cell(x: Tensor, h: Tensor, c: Tensor, weight: Tensor, bias: Tensor) -> tuple[Tensor, Tensor]:
    """One LSTM cell step with the four gates fused into one matmul (``nn.LSTMCell``'s layout).

    Gate order (i, f, g, o) and equations are those of ``torch.nn.LSTMCell``; ``weight`` is
    ``cat([weight_ih, weight_hh], dim=1)`` of such a cell and ``bias`` is ``bias_ih + bias_hh``.
    The optimizer itself runs the same math with coordinates last (:func:`update_block`).

    Implementation note (speed, same math): ``tanh(z) = 2·sigmoid(2z) − 1``. The g rows of the
    weight are doubled so that a single ``sigmoid`` over the contiguous ``(4H, n)`` gate matrix
    serves all four gates; CPU ``tanh`` is several times slower than ``sigmoid``. Results match
    ``nn.LSTMCell`` to float rounding.

    Args:
        x: ``(n, input_size)``; h, c: ``(n, H)``.
        weight: ``(4H, input_size + H)``; bias: ``(4H,)``.

    Returns:
        ``(h_new, c_new)``, each ``(n, H)``.
    """
    h_new, c_new = _cell(x.t(), h.t(), c.t(), *prepare_gates(weight, bias))
    return h_new.t(), c_new.t()


def update_block(
    grad: Tensor,
    h: Tensor,
    c: Tensor,
    gates: Sequence[tuple[Tensor, Tensor]],
    out_weight: Tensor,
    out_bias: Tensor,
    *,
    preprocess: str,
    p: float,
    output_scale: float,
    output_activation: str = "linear",
    moments: Tensor | None = None,
    moment_decay: float = 0.95,
) -> tuple[Tensor, list[Tensor], list[Tensor], Tensor | None]:
    """:func:`lstm_update` on one block of coordinates, with gates from :func:`prepare_gates`.

    Args:
        grad: ``(n,)``; h, c: ``(L, H, n)`` (may be a column block of a larger state).
        moments: ``(3, n)`` moment state, required by ``preprocess="adam"`` (else None).

    Returns:
        ``(update (n,), [h_l (H, n)] * L, [c_l (H, n)] * L, new moments (3, n) or None)``.
    """
    if preprocess == "adam":
        if moments is None:
            raise ValueError("preprocess 'adam' needs the (3, n) moment state")
        x, moments = adam_features(grad, moments, moment_decay)  # (2, n)
    else:
        x = lstm_input(grad, preprocess=preprocess, p=p)  # (input_size, n)
        moments = None
    hs, cs = [], []
    for layer, (weight, bias) in enumerate(gates):
        x, c_layer = _cell(x, h[layer], c[layer], weight, bias)
        hs.append(x)
        cs.append(c_layer)
    out = torch.addmm(out_bias.unsqueeze(1), out_weight, x).squeeze(0)  # (n,)
    update = (torch.tanh(out) if output_activation == "tanh" else out) * output_scale
    return update, hs, cs, moments


def lstm_update(
    grad: Tensor,
    h: Tensor,
    c: Tensor,
    weights: Sequence[Tensor],
    biases: Sequence[Tensor],
    out_weight: Tensor,
    out_bias: Tensor,
    *,
    preprocess: str = "log-sign",
    p: float = 10.0,
    output_scale: float = 0.1,
    chunk_size: int | None = None,
    output_activation: str = "linear",
    moments: Tensor | None = None,
    moment_decay: float = 0.95,
) -> tuple[Tensor, Tensor, Tensor] | tuple[Tensor, Tensor, Tensor, Tensor]:
    """The optimizer step m(∇_t, h_t; φ) -> (g_t, h_{t+1}) of the paper (Eq. 1 and Section 2.1).

    The same weights are applied to every coordinate independently (coordinate-wise LSTM), so the
    ``n`` coordinates are simply the batch dimension of the LSTM (kept last: see the layout note above).

    Args:
        grad: ``(n,)`` gradient of the optimizee, one entry per coordinate.
        h, c: ``(L, H, n)`` per-coordinate LSTM state.
        weights: ``L`` fused gate weights, ``(4H, in_l + H)`` (``in_0`` = input size, else ``H``).
        biases: ``L`` gate biases ``(4H,)``.
        out_weight: ``(1, H)`` and out_bias ``(1,)``: the linear read-out of the top layer.
        preprocess: "log-sign" (paper, Appendix A) or "none" (raw gradient).
        p: preprocessing exponent.
        output_scale: the update is ``output_scale * act(linear(h_top))`` (0.1 in the paper's text).
        chunk_size: process the coordinates in blocks of this many (cache-sized working set; the
            result is the same up to float rounding). ``None`` processes all at once.
        output_activation: ``act``: "linear" (the paper) or "tanh" (|update| < output_scale, as RNNprop).
        moments: ``(3, n)`` moment state of ``preprocess="adam"`` (:func:`adam_features`), else None.
        moment_decay: β of the adam preprocessing.

    Returns:
        ``(update, h_new, c_new)``: ``(n,)`` additive update θ_{t+1} = θ_t + update, and the new
        ``(L, H, n)`` states; with ``moments``, also the new ``(3, n)`` moments (the output mirrors the input).
    """
    n = grad.shape[0]
    gates = [prepare_gates(w, b) for w, b in zip(weights, biases)]
    kwargs = {"preprocess": preprocess, "p": p, "output_scale": output_scale, "output_activation": output_activation,
              "moment_decay": moment_decay}
    if chunk_size is None or n <= chunk_size:
        update, hs, cs, new_moments = update_block(grad, h, c, gates, out_weight, out_bias, moments=moments, **kwargs)
        result = (update, torch.stack(hs), torch.stack(cs))
        return result if moments is None else (*result, new_moments)
    updates, h_blocks, c_blocks, m_blocks = [], [], [], []
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        u, hs, cs, ms = update_block(grad[start:stop], h[..., start:stop], c[..., start:stop], gates, out_weight,
                                     out_bias, moments=None if moments is None else moments[:, start:stop], **kwargs)
        updates.append(u)
        h_blocks.append(torch.stack(hs))
        c_blocks.append(torch.stack(cs))
        m_blocks.append(ms)
    result = (torch.cat(updates), torch.cat(h_blocks, dim=2), torch.cat(c_blocks, dim=2))
    return result if moments is None else (*result, torch.cat(m_blocks, dim=1))
