"""``LearnedOptimizer``: the meta-trained LSTM as a drop-in ``torch.optim.Optimizer``.

Paper: Andrychowicz et al. 2016, https://arxiv.org/abs/1606.04474 (update rule, Eq. 1).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

from metashot.errors import CheckpointError, UsageError
from metashot.optim.coordinatewise import STATE_LAYOUT, CoordinatewiseLSTM, state_from_layout
from metashot.optim.functional import MOMENT_ROWS, update_block

# ---------------------------------------------------------------------------------------------------

def _coordinates_last(state_dict: dict[str, Any]) -> dict[str, Any]:
    """``state_dict`` with every group's ``h``/``c`` in :data:`STATE_LAYOUT` (each group records its
    ``state_layout``; see :func:`state_from_layout`). A shallow copy; the caller's dict is not modified."""
    states = dict(state_dict["state"])
    for group in state_dict["param_groups"]:
        layout = group.get("state_layout")
        for index in group["params"]:
            if index in states:
                states[index] = {
                    k: (state_from_layout(v, layout, "optimizer state") if k in ("h", "c") else v)
                    for k, v in states[index].items()
                }
    return {**state_dict, "state": states}


class LearnedOptimizer(Optimizer):
    """θ_{t+1} = θ_t + lr · m(∇_t, h_t; φ), with m the coordinate-wise LSTM (paper, Eq. 1).

    Works with any model and parameter shapes, on CPU and GPU: each parameter tensor is flattened
    to its coordinates, and its LSTM state is kept as named tensors ``state[p]["h"]`` and
    ``state[p]["c"]`` of shape ``(num_layers, hidden_size, p.numel())`` (coordinates last; safetensors-friendly;
    states saved before metashot 0.2 in the ``(num_layers, p.numel(), hidden_size)`` layout load as well).
    A net with Adam-normalised inputs (``preprocess="adam"``) also keeps ``state[p]["moments"]``, ``(3, p.numel())``.
    Gradients are computed in the network's dtype (float32) and the update is cast to ``p.dtype``.
    ``lr`` scales the learned update; 1.0 reproduces the meta-training unroll exactly.

    Fused state (``fused=True``, the default): the coordinates of all parameters that share a
    param group, a device and an LSTM are processed by one LSTM call per step, their states kept in
    one flat ``(num_layers, hidden_size, N)`` buffer of which each ``state[p]["h"]`` is a view (the
    per-parameter state API is unchanged; ``state_dict`` returns contiguous copies and
    ``load_state_dict`` re-packs). Same math as ``fused=False`` (one call per tensor, the layout of
    the meta-training unroll without ``fused``); fewer kernel launches: a model with T parameter
    tensors costs ~T times fewer launches per step, which is what decides speed on a GPU. Float
    rounding can differ between the two layouts, because CPU blocks (``chunk_size``) fall differently.

    Separate LSTMs (a net meta-trained with ``lstm_groups``, e.g. ``("conv", "fc")``): each
    parameter goes through the LSTM its name selects, so pass named parameters
    (``model.named_parameters()``, or groups with ``"params": [(name, p), ...]``); alternatively a
    param group may pick its LSTM explicitly, ``{"params": [...], "lstm": "conv"}`` (a group name
    or index), like ``lr`` per group. With one shared LSTM (the default) names are not needed.

    Args:
        params: iterable of parameters, named parameters ``(name, tensor)`` or param-group dicts.
        net: a :class:`CoordinatewiseLSTM` (e.g. ``CoordinatewiseLSTM.from_pretrained(dir)``).
        checkpoint: alternatively, a folder written by ``metashot optim meta-train``.
        lr: multiplier of the learned update (default 1.0).
        fused: one LSTM call for all tensors of a group per step (default) instead of one per tensor.
        compile: run the per-block LSTM math through ``torch.compile`` (fuses its element-wise
            kernels; the first step compiles, ~15 s on CPU). Same values up to float rounding.

    Example:
        >>> model = torch.nn.Linear(4, 1)
        >>> opt = LearnedOptimizer(model.parameters(), net=CoordinatewiseLSTM())
        >>> model(torch.randn(8, 4)).pow(2).mean().backward()
        >>> opt.step()
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        net: CoordinatewiseLSTM | None = None,
        *,
        checkpoint: str | os.PathLike[str] | None = None,
        lr: float = 1.0,
        fused: bool = True,
        compile: bool = False,
    ) -> None:
        if (net is None) == (checkpoint is None):
            raise UsageError("LearnedOptimizer needs exactly one of net=... or checkpoint=...")
        if not 0.0 <= lr:
            raise UsageError(f"invalid learning rate {lr}; it must be >= 0")
        if net is None:
            net = CoordinatewiseLSTM.from_pretrained(checkpoint)  # type: ignore[arg-type]
        self.net = net
        self._fingerprint = net.fingerprint()
        self._net_copies: dict[torch.device, CoordinatewiseLSTM] = {}
        self.fused = bool(fused)
        self._block_fn = torch.compile(update_block, dynamic=True) if compile else update_block
        # (group index, device, lstm) -> the flat state its parameters' state views point into
        self._flat: dict[tuple[int, torch.device, int], _FlatState] = {}
        super().__init__(params, {"lr": lr})

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        self._lstm_indices(self.param_groups[-1])  # fail now, not at the first step, if a parameter has no LSTM

    # -- helpers -----------------------------------------------------------------------------------

    def _lstm_indices(self, group: dict[str, Any]) -> list[int]:
        """The LSTM of each parameter of ``group``: its ``"lstm"`` entry, else by parameter name."""
        if group.get("lstm") is not None:
            return [self.net.group_index(group["lstm"])] * len(group["params"])
        names = group.get("param_names") or [None] * len(group["params"])
        return [self.net.lstm_index(name) for name in names]

    def _net_on(self, device: torch.device) -> CoordinatewiseLSTM:
        if self.net.device == device:
            return self.net
        if device not in self._net_copies:
            import copy

            self._net_copies[device] = copy.deepcopy(self.net).to(device)
        return self._net_copies[device]

    # -- the step ----------------------------------------------------------------------------------

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:  # type: ignore[override]
        """Apply one learned update to every parameter with a gradient; returns closure's loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for index, group in enumerate(self.param_groups):
            buckets: dict[tuple[torch.device, int], list[Tensor]] = {}
            for p, lstm in zip(group["params"], self._lstm_indices(group)):
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise UsageError("LearnedOptimizer does not support sparse gradients")
                if p.is_complex():
                    raise UsageError("LearnedOptimizer does not support complex parameters; use torch.view_as_real")
                buckets.setdefault((p.device, lstm), []).append(p)
            for (device, lstm), params in buckets.items():
                net = self._net_on(device)
                if self.fused:
                    self._fused_step(params, net, lstm, group["lr"], (index, device, lstm))
                else:
                    for p in params:
                        self._tensor_step(p, net, lstm, group["lr"])
        return loss

    def _lstm_update(self, net: CoordinatewiseLSTM, grad: Tensor, h: Tensor, c: Tensor, lstm: int,
                     moments: Tensor | None) -> Tensor:
        try:
            return net.update_(grad, h, c, lstm, moments=moments, block_fn=self._block_fn)
        except torch._dynamo.exc.BackendCompilerFailed as exc:  # only with compile=True
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UsageError(
                f"LearnedOptimizer(compile=True) could not compile its step ({first}); torch.compile needs a "
                "working C++ compiler on CPU or Triton on GPU: install one or pass compile=False"
            ) from exc

    def _tensor_state(self, p: Tensor, net: CoordinatewiseLSTM) -> dict[str, Any]:
        state = self.state[p]
        if len(state) == 0:
            state["step"] = torch.tensor(0.0)
            state["h"], state["c"] = net.initial_state(p.numel(), device=p.device)
            if net.uses_moments:
                state["moments"] = net.initial_moments(p.numel(), device=p.device)
        return state

    def _tensor_step(self, p: Tensor, net: CoordinatewiseLSTM, lstm: int, lr: float) -> None:
        state = self._tensor_state(p, net)
        grad = p.grad.reshape(-1).to(net.dtype)
        update = self._lstm_update(net, grad, state["h"], state["c"], lstm, state.get("moments"))  # in place
        p.add_(update.view_as(p).to(p.dtype), alpha=lr)
        state["step"] += 1

    def _fused_step(self, params: list[Tensor], net: CoordinatewiseLSTM, lstm: int, lr: float,
                    key: tuple[int, torch.device, int]) -> None:
        flat = self._flat.get(key)
        if flat is None or not flat.serves(params, self.state):
            flat = self._flat[key] = _FlatState.pack(params, [self.state[p] for p in params], net)
        grads = [p.grad.reshape(-1) for p in params]
        grad = (grads[0] if len(grads) == 1 else torch.cat(grads)).to(net.dtype)
        update = self._lstm_update(net, grad, flat.h, flat.c, lstm, flat.moments)  # (N,); views updated in place
        pieces = [piece.view_as(p).to(p.dtype) for p, piece in zip(params, update.split(flat.sizes))]
        # foreach: one kernel for all tensors where the backend fuses it (CUDA), like Adam's default
        torch._foreach_add_(params, pieces, alpha=lr)
        torch._foreach_add_([self.state[p]["step"] for p in params], 1)

    # -- persistence -------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        for group in state["param_groups"]:
            group["net_fingerprint"] = self._fingerprint
            group["state_layout"] = STATE_LAYOUT
        # The fused layout keeps h and c as strided views of one buffer: hand out contiguous tensors
        # (safetensors needs them; the buffer stays private), in new dicts so self.state is untouched.
        state["state"] = {
            k: {name: (v.contiguous() if name in _FLAT_KEYS else v) for name, v in s.items()}
            for k, s in state["state"].items()
        }
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        for group in state_dict["param_groups"]:
            stored = group.get("net_fingerprint", self._fingerprint)
            if stored != self._fingerprint:
                raise CheckpointError(
                    f"optimizer state was saved with LSTM weights {stored}, but this optimizer's net is "
                    f"{self._fingerprint}; load the same checkpoint as when the state was saved"
                )
        converted = _coordinates_last(state_dict)
        self._check_loaded_state(converted)
        super().load_state_dict(converted)
        for group in self.param_groups:
            group.pop("net_fingerprint", None)
            group.pop("state_layout", None)
        self._flat.clear()  # the loaded tensors are packed again at the next step

    def _check_loaded_state(self, state_dict: dict[str, Any]) -> None:
        """Each saved parameter state must fit its parameter and this net: ``h``/``c`` of shape
        ``(num_layers, hidden_size, numel)`` and, exactly for a net with ``preprocess="adam"``, ``moments``
        of shape ``(3, numel)``. Checked before anything is loaded, so a bad state changes nothing.

        Raises:
            CheckpointError: naming the parameter (its index and shape) and the entry that does not fit.
        """
        saved = [i for group in state_dict["param_groups"] for i in group["params"]]
        params = [p for group in self.param_groups for p in group["params"]]
        if len(saved) != len(params):
            return  # torch's own load_state_dict reports the mismatch of parameter counts
        cfg = self.net.config
        for position, (index, p) in enumerate(zip(saved, params)):
            entry = state_dict["state"].get(index)
            if not entry:
                continue
            expected = {"h": (cfg.num_layers, cfg.hidden_size, p.numel()), "c": (cfg.num_layers, cfg.hidden_size, p.numel())}
            if cfg.uses_moments:
                expected["moments"] = (MOMENT_ROWS, p.numel())
            elif "moments" in entry:
                raise CheckpointError(f"optimizer state of parameter {position} (shape {tuple(p.shape)}) has gradient "
                                      "moments, but this optimizer's net keeps none; it was saved by another optimizer")
            for key, shape in expected.items():
                value = entry.get(key)
                if value is None or tuple(value.shape) != shape:
                    found = "missing" if value is None else f"of shape {tuple(value.shape)}"
                    raise CheckpointError(
                        f"optimizer state of parameter {position} (shape {tuple(p.shape)}): {key!r} is {found}, "
                        f"expected {shape}; the state is truncated or belongs to other parameters"
                    )


_FLAT_KEYS = ("h", "c", "moments")  # per-parameter state kept as views of a fused bucket's buffers


class _FlatState:
    """One ``(L, H, N)`` buffer pair (and a ``(3, N)`` moment buffer for ``preprocess="adam"``) for the
    parameters of a fused bucket; each ``state[p]["h"]`` is the view ``h[..., offset : offset + p.numel()]``."""

    def __init__(self, params: list[Tensor], h: Tensor, c: Tensor, moments: Tensor | None, sizes: list[int]) -> None:
        self.ids = [id(p) for p in params]
        self.h, self.c, self.moments, self.sizes = h, c, moments, sizes
        self.views = {"h": list(h.split(sizes, dim=2)), "c": list(c.split(sizes, dim=2))}
        if moments is not None:
            self.views["moments"] = list(moments.split(sizes, dim=1))

    @classmethod
    def pack(cls, params: list[Tensor], states: list[dict[str, Any]], net: CoordinatewiseLSTM) -> _FlatState:
        """One zero buffer for the parameters' states, their current state copied in (a parameter
        without state starts at zero, step 0); each state's ``h``/``c`` (``moments``) then points at its view."""
        sizes = [p.numel() for p in params]
        h, c = net.initial_state(sum(sizes), device=params[0].device)
        flat = cls(params, h, c, net.initial_moments(sum(sizes), device=params[0].device), sizes)
        for i, s in enumerate(states):
            if len(s) == 0:
                s["step"] = torch.tensor(0.0)
            for key, views in flat.views.items():
                if key in s:
                    views[i].copy_(s[key])
                s[key] = views[i]
        return flat

    def serves(self, params: list[Tensor], state: Any) -> bool:
        """Whether this buffer still backs exactly these parameters' states (same order, same views)."""
        if [id(p) for p in params] != self.ids:
            return False
        return all(state[p].get(key) is view for key, views in self.views.items() for p, view in zip(params, views))
