"""``PhasedLSTMCell`` and ``PhasedLSTM``: ``nn.LSTMCell`` / ``nn.LSTM`` with a time gate.

Neil, Pfeiffer & Liu, *Phased LSTM: Accelerating Recurrent Network Training for Long or
Event-based Sequences*, NIPS 2016, https://arxiv.org/abs/1610.09513, section 2, eqs. (6)-(9).
The math lives in :mod:`metashot.rnn.functional`; these classes hold parameters and validate.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import torch
from torch import Tensor, nn

from metashot.errors import TimestampError, UsageError
from metashot.rnn import functional as F
from metashot.rnn.fused import gated_lstm_recurrence_fused

# Smallest period and open ratio the forward pass will use (the parameters themselves are
# projected back into range by ``constrain_()`` after each optimizer step).
MIN_PERIOD = 1e-3
MIN_R_ON = 1e-3
BACKENDS = ("auto", "fused", "eager", "script", "compile")

_Recurrence = Callable[[Tensor, Tensor, Tensor, Tensor, Tensor], tuple[Tensor, Tensor, Tensor]]
_compiled: dict[str, _Recurrence] = {}

# ---------------------------------------------------------------------------------------------
# helpers


def recurrence_fn(backend: str = "auto") -> _Recurrence:
    """The time loop (:func:`functional.gated_lstm_recurrence`'s contract) for ``backend``.

    ``auto`` = ``fused`` (:mod:`metashot.rnn.fused`): no autograd recording and a hand-written
    backward pass with fewer kernels per step; ~10% faster than ``eager`` on CPU, where both are
    bound by the ``h @ W_hh`` products (``benchmarks/plstm_speed.py``). ``eager`` is the plain
    Python loop through autograd (the reference). ``script`` (TorchScript, whose profiling executor
    re-specialises when the sequence length changes) and ``compile`` (``torch.compile`` of one
    step, slow to warm up) are there to be measured.
    """
    if backend not in BACKENDS:
        raise UsageError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend in ("fused", "auto"):
        return gated_lstm_recurrence_fused
    if backend == "eager":
        return F.gated_lstm_recurrence
    if backend in _compiled:
        return _compiled[backend]
    fn: _Recurrence = F.gated_lstm_recurrence
    if backend == "script":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.jit is deprecated in favour of torch.compile
            fn = torch.jit.script(F.gated_lstm_recurrence)
    elif backend == "compile":
        step = torch.compile(F.gated_lstm_step, dynamic=False)

        def fn(gates: Tensor, k: Tensor, h: Tensor, c: Tensor, w: Tensor) -> tuple[Tensor, Tensor, Tensor]:
            outputs = []
            for gates_t, k_t in zip(gates.unbind(0), k.unbind(0)):
                h, c = step(gates_t, k_t, h, c, w)
                outputs.append(h)
            return torch.stack(outputs), h, c

    _compiled[backend] = fn
    return fn


def check_timestamps(times: Tensor, mask: Tensor | None = None) -> None:
    """Raise :class:`TimestampError` if valid timestamps are NaN/inf or go backwards.

    Args:
        times: ``(T, B)`` time-major.
        mask: ``(T, B)`` bool, True at real (non-padded) steps; padded steps are ignored.
    """
    valid = torch.ones_like(times, dtype=torch.bool) if mask is None else mask
    bad = valid & ~torch.isfinite(times)
    if bad.any():
        step, batch = (int(i) for i in bad.nonzero()[0])
        raise TimestampError(
            f"timestamp at step {step} of sequence {batch} is {times[step, batch].item()}; "
            "timestamps must be finite (mark padded steps with lengths= or mask= instead of NaN)"
        )
    # Compare each valid step with the previous valid step of the same sequence.
    filled = torch.where(valid, times, torch.full_like(times, -math.inf))
    previous = torch.cummax(filled, dim=0).values
    back = valid[1:] & (times[1:] < previous[:-1])
    if back.any():
        step, batch = (int(i) for i in back.nonzero()[0])
        raise TimestampError(
            f"timestamps go backwards in sequence {batch}: step {step + 1} has t={times[step + 1, batch].item():g} "
            f"after t={previous[step, batch].item():g}; sort each sequence by time (equal times are allowed)"
        )


def _init_time_parameters(
    period: Tensor, shift: Tensor, r_on: Tensor, period_init_range: tuple[float, float], r_on_init: float
) -> None:
    low, high = period_init_range
    with torch.no_grad():
        period.uniform_(math.log(low), math.log(high)).exp_()  # log-uniform tau
        shift.uniform_(0.0, 1.0).mul_(period)  # s ~ U(0, tau)
        r_on.fill_(r_on_init)


def _validate(hidden_size: int, r_on: float, leak: float, period_init_range: tuple[float, float]) -> None:
    if hidden_size <= 0:
        raise UsageError(f"hidden_size must be positive, got {hidden_size}")
    if not 0.0 < r_on <= 1.0:
        raise UsageError(f"r_on must be in (0, 1], got {r_on}")
    if not leak >= 0.0:
        raise UsageError(f"leak must be >= 0, got {leak}")
    low, high = period_init_range
    if not 0.0 < low <= high:
        raise UsageError(f"period_init_range must satisfy 0 < low <= high, got {period_init_range}")


# ---------------------------------------------------------------------------------------------
# building block


class _TimeGateMixin(nn.Module):
    """Parameters tau (``period``), s (``shift``) and r_on (``r_on``), one per neuron."""

    period: nn.Parameter
    shift: nn.Parameter
    r_on: nn.Parameter
    leak: float
    time_gate: bool

    def effective_period(self) -> Tensor:
        """tau used in the forward pass: ``|tau|``, at least MIN_PERIOD, ``(H,)``."""
        return self.period.abs().clamp_min(MIN_PERIOD)

    def effective_r_on(self) -> Tensor:
        """r_on used in the forward pass, in ``[MIN_R_ON, 1]``, ``(H,)``."""
        return self.r_on.abs().clamp(MIN_R_ON, 1.0)

    def openness(self, times: Tensor) -> Tensor:
        """k for every neuron at ``times`` (any shape ``(...)``) -> ``(..., H)``. Leak only in training."""
        leak = self.leak if self.training else 0.0
        if not self.time_gate:
            return torch.ones(*times.shape, self.period.shape[0], dtype=self.period.dtype, device=times.device)
        return F.time_gate(times.unsqueeze(-1), self.effective_period(), self.shift, self.effective_r_on(), leak)

    @torch.no_grad()
    def constrain_(self) -> None:
        """Project tau and r_on back into their valid ranges (call after ``optimizer.step()``)."""
        self.period.abs_().clamp_(min=MIN_PERIOD)
        self.r_on.abs_().clamp_(MIN_R_ON, 1.0)


class PhasedLSTMCell(_TimeGateMixin):
    """``nn.LSTMCell`` with the Phased LSTM time gate (Neil et al. 2016, eqs. 6-9).

    Same arguments, parameter names (``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``, gate
    order i, f, g, o) and initialisation as ``nn.LSTMCell``, plus per-neuron ``period`` (tau,
    log-uniform in ``period_init_range``), ``shift`` (s ~ U(0, tau)) and ``r_on``.

    Deviations from the paper: the forward pass uses ``|tau|`` and ``clamp(|r_on|, 1e-3, 1)`` so an
    optimizer step can never produce an invalid gate; ``constrain_()`` projects the stored values.

    Example:
        >>> cell = PhasedLSTMCell(1, 8)
        >>> h, c = cell(torch.randn(4, 1), torch.full((4,), 3.0))
        >>> h.shape
        torch.Size([4, 8])
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        *,
        r_on: float = 0.05,
        leak: float = 1e-3,
        period_init_range: tuple[float, float] = (math.e, math.e**6),
        learn_time_parameters: bool = True,
        learn_r_on: bool = True,
        time_gate: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        _validate(hidden_size, r_on, leak, period_init_range)
        kw = {"device": device, "dtype": dtype}
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        self.leak, self.time_gate = float(leak), time_gate
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size, **kw))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, hidden_size, **kw))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(4 * hidden_size, **kw))
            self.bias_hh = nn.Parameter(torch.empty(4 * hidden_size, **kw))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        grad = learn_time_parameters
        self.period = nn.Parameter(torch.empty(hidden_size, **kw), requires_grad=grad)
        self.shift = nn.Parameter(torch.empty(hidden_size, **kw), requires_grad=grad)
        self.r_on = nn.Parameter(torch.empty(hidden_size, **kw), requires_grad=grad and learn_r_on)
        self._period_init_range, self._r_on_init = period_init_range, r_on
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)  # as nn.LSTMCell
        for weight in (self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh):
            if weight is not None:
                nn.init.uniform_(weight, -bound, bound)
        _init_time_parameters(self.period, self.shift, self.r_on, self._period_init_range, self._r_on_init)

    def forward(
        self, input: Tensor, times: Tensor | float, hx: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, Tensor]:
        """One step.

        Args:
            input: ``(B, input_size)`` or unbatched ``(input_size,)``.
            times: timestamp of this step, ``(B,)``, ``()`` or a float; same unit as ``period``.
            hx: ``(h, c)``, each ``(B, H)`` (``(H,)`` unbatched); zeros if omitted.

        Returns:
            ``(h', c')``, each ``(B, H)`` (``(H,)`` unbatched).
        """
        unbatched = input.dim() == 1
        if unbatched:
            input = input.unsqueeze(0)
            hx = None if hx is None else (hx[0].unsqueeze(0), hx[1].unsqueeze(0))
        batch = input.shape[0]
        times = torch.as_tensor(times, dtype=input.dtype, device=input.device).reshape(-1).expand(batch)
        check_timestamps(times.unsqueeze(0))
        if hx is None:
            zeros = input.new_zeros(batch, self.hidden_size)
            hx = (zeros, zeros)
        gates = input @ self.weight_ih.t()
        if self.bias_ih is not None:
            gates = gates + self.bias_ih + self.bias_hh
        h, c = F.gated_lstm_step(gates, self.openness(times), hx[0], hx[1], self.weight_hh)
        return (h.squeeze(0), c.squeeze(0)) if unbatched else (h, c)


# ---------------------------------------------------------------------------------------------
# the layer


class PhasedLSTM(nn.Module):
    """``nn.LSTM`` with a time gate per neuron: a drop-in layer for irregularly sampled sequences.

    Neil et al. 2016, https://arxiv.org/abs/1610.09513, eqs. (6)-(9). Arguments, their order,
    ``batch_first``, unbatched ``(T, H_in)`` input, inter-layer ``dropout`` and the
    ``(num_layers, B, H)`` state shapes are those of ``nn.LSTM``; the forward pass also takes a
    timestamp for every step. The gate is computed for all steps at once; only the
    ``h @ W_hh`` recurrence is sequential (TorchScript by default, see ``backend``).

    Padding: pass ``lengths`` (``(B,)``) or ``mask`` (same layout as ``times``, True = real step).
    Padded steps keep the gate shut (k = 0), so the state is carried unchanged, ``(h_n, c_n)`` is
    the state after each sequence's last real step, and outputs at padded steps are zero (as
    ``pad_packed_sequence`` gives). Their timestamps are ignored and may be anything.

    Deviations from the paper: see :class:`PhasedLSTMCell`. Every layer sees the same times.

    Example:
        >>> plstm = PhasedLSTM(1, 16, num_layers=2, batch_first=True)
        >>> x, t = torch.randn(4, 50, 1), torch.arange(50.0).expand(4, 50)
        >>> output, (h_n, c_n) = plstm(x, t)
        >>> output.shape, h_n.shape
        (torch.Size([4, 50, 16]), torch.Size([2, 4, 16]))
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        *,
        r_on: float = 0.05,
        leak: float = 1e-3,
        period_init_range: tuple[float, float] = (math.e, math.e**6),
        learn_time_parameters: bool = True,
        learn_r_on: bool = True,
        time_gate: bool = True,
        backend: str = "auto",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise UsageError(f"num_layers must be >= 1, got {num_layers}")
        if not 0.0 <= dropout < 1.0:
            raise UsageError(f"dropout must be in [0, 1), got {dropout}")
        if backend not in BACKENDS:
            recurrence_fn(backend)  # raises UsageError naming the choices
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout, self.backend = bias, batch_first, float(dropout), backend
        self.cells = nn.ModuleList(
            PhasedLSTMCell(
                input_size if layer == 0 else hidden_size,
                hidden_size,
                bias,
                r_on=r_on,
                leak=leak,
                period_init_range=period_init_range,
                learn_time_parameters=learn_time_parameters,
                learn_r_on=learn_r_on,
                time_gate=time_gate,
                device=device,
                dtype=dtype,
            )
            for layer in range(num_layers)
        )

    @torch.no_grad()
    def constrain_(self) -> None:
        """Project every layer's tau and r_on into range (call after ``optimizer.step()``)."""
        for cell in self.cells:
            cell.constrain_()

    def _time_major(
        self, input: Tensor, times: Tensor, lengths: Tensor | None, mask: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor | None, bool]:
        """-> input ``(T, B, I)``, times ``(T, B)``, mask ``(T, B)`` or None, unbatched flag."""
        if input.dim() not in (2, 3):
            raise UsageError(f"PhasedLSTM: expected input of 2 or 3 dimensions, got shape {tuple(input.shape)}")
        unbatched = input.dim() == 2
        times = torch.as_tensor(times, device=input.device).to(input.dtype)
        if unbatched:
            input, times = input.unsqueeze(1), times.reshape(-1, 1)
            mask = None if mask is None else mask.reshape(-1, 1)
        elif self.batch_first:
            input = input.transpose(0, 1)  # (B, T, I) -> (T, B, I)
            times = times.transpose(0, 1) if times.dim() == 2 else times
            mask = None if mask is None else mask.transpose(0, 1)
        steps, batch = input.shape[:2]
        if times.dim() == 1 and times.shape[0] == steps:  # one time axis shared by the batch
            times = times.unsqueeze(1).expand(steps, batch)
        if times.shape != (steps, batch):
            raise UsageError(
                f"PhasedLSTM: times must have one timestamp per step, shape {(steps, batch)} "
                f"(time-major) but got {tuple(times.shape)}"
            )
        if lengths is not None:
            if mask is not None:
                raise UsageError("PhasedLSTM: pass lengths= or mask=, not both")
            lengths = torch.as_tensor(lengths, device=input.device).reshape(-1)
            if lengths.shape[0] != batch or (lengths < 1).any() or (lengths > steps).any():
                raise UsageError(f"PhasedLSTM: lengths must be {batch} integers in [1, {steps}], got {lengths.tolist()}")
            mask = torch.arange(steps, device=input.device).unsqueeze(1) < lengths.unsqueeze(0)
        if mask is not None:
            mask = mask.to(device=input.device, dtype=torch.bool)
            if mask.shape != (steps, batch):
                raise UsageError(f"PhasedLSTM: mask must match times, {(steps, batch)} time-major, got {tuple(mask.shape)}")
        return input, times, mask, unbatched

    def openness(
        self, times: Tensor, *, lengths: Tensor | None = None, mask: Tensor | None = None
    ) -> Tensor:
        """Gate openness of every layer and neuron, ``(num_layers, T, B, H)`` time-major, 0 at padding.

        Uses the current mode: leak alpha while training, 0 in ``eval()``.
        """
        times = torch.as_tensor(times, dtype=self.cells[0].weight_hh.dtype)
        dummy = times.new_zeros(*times.shape, 1)
        _, times_tm, mask_tm, _ = self._time_major(dummy, times, lengths, mask)
        out = torch.stack([cell.openness(times_tm) for cell in self.cells])
        return out if mask_tm is None else out * mask_tm.unsqueeze(-1)

    def forward(
        self,
        input: Tensor,
        times: Tensor,
        hx: tuple[Tensor, Tensor] | None = None,
        *,
        lengths: Tensor | None = None,
        mask: Tensor | None = None,
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """Run the sequence.

        Args:
            input: ``(T, B, input_size)``, ``(B, T, input_size)`` if ``batch_first``, or unbatched
                ``(T, input_size)``.
            times: timestamps in the same layout without the feature axis: ``(T, B)``, ``(B, T)``
                or ``(T,)``; a ``(T,)`` tensor with batched input is shared by the batch. Same unit
                as ``period``; non-decreasing and finite at real steps (else TimestampError).
            hx: ``(h_0, c_0)``, each ``(num_layers, B, H)`` (``(num_layers, H)`` unbatched).
            lengths: ``(B,)`` real lengths of a padded batch; or ``mask`` (``times``' shape, bool).

        Returns:
            ``output`` (``input``'s layout with ``hidden_size`` features, last layer) and
            ``(h_n, c_n)``, each ``(num_layers, B, H)``.
        """
        x, times, mask, unbatched = self._time_major(input, times, lengths, mask)
        check_timestamps(times, mask)
        if mask is not None:  # padded timestamps may be NaN: keep them out of the gate (and its grad)
            times = torch.where(mask, times, torch.zeros_like(times))
        steps, batch = x.shape[:2]
        if hx is None:
            zeros = x.new_zeros(self.num_layers, batch, self.hidden_size)
            hx = (zeros, zeros)
        elif unbatched:
            hx = (hx[0].unsqueeze(1), hx[1].unsqueeze(1))
        if hx[0].shape != (self.num_layers, batch, self.hidden_size) or hx[1].shape != hx[0].shape:
            raise UsageError(
                f"PhasedLSTM: h_0 and c_0 must be {(self.num_layers, batch, self.hidden_size)}, "
                f"got {tuple(hx[0].shape)} and {tuple(hx[1].shape)}"
            )
        run = recurrence_fn(self.backend)
        h_n, c_n = [], []
        for layer, cell in enumerate(self.cells):
            if layer > 0 and self.dropout > 0.0 and self.training:
                x = nn.functional.dropout(x, self.dropout, training=True)
            gates = x @ cell.weight_ih.t()  # (T, B, 4H) for all steps at once
            if cell.bias_ih is not None:
                gates = gates + (cell.bias_ih + cell.bias_hh)
            k = cell.openness(times)  # (T, B, H) for all steps at once
            if mask is not None:
                k = k * mask.unsqueeze(-1).to(k.dtype)
            x, h, c = run(gates, k, hx[0][layer], hx[1][layer], cell.weight_hh)
            h_n.append(h)
            c_n.append(c)
        if mask is not None:
            x = x * mask.unsqueeze(-1).to(x.dtype)
        h_stack, c_stack = torch.stack(h_n), torch.stack(c_n)
        if unbatched:
            return x.squeeze(1), (h_stack.squeeze(1), c_stack.squeeze(1))
        return (x.transpose(0, 1) if self.batch_first else x), (h_stack, c_stack)
