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
from metashot.optim.coordinatewise import CoordinatewiseLSTM

# ---------------------------------------------------------------------------------------------------


class LearnedOptimizer(Optimizer):
    """θ_{t+1} = θ_t + lr · m(∇_t, h_t; φ), with m the coordinate-wise LSTM (paper, Eq. 1).

    Works with any model and parameter shapes, on CPU and GPU: each parameter tensor is flattened
    to its coordinates, and its LSTM state is kept as named tensors ``state[p]["h"]`` and
    ``state[p]["c"]`` of shape ``(num_layers, p.numel(), hidden_size)`` (safetensors-friendly).
    Gradients are computed in the network's dtype (float32) and the update is cast to ``p.dtype``.
    ``lr`` scales the learned update; 1.0 reproduces the meta-training unroll exactly.

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
        for group in self.param_groups:
            for p, lstm in zip(group["params"], self._lstm_indices(group)):
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise UsageError("LearnedOptimizer does not support sparse gradients")
                if p.is_complex():
                    raise UsageError("LearnedOptimizer does not support complex parameters; use torch.view_as_real")
                net = self._net_on(p.device)
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = torch.tensor(0.0)
                    state["h"], state["c"] = net.initial_state(p.numel(), device=p.device)
                grad = p.grad.reshape(-1).to(net.dtype)
                update = net.update_(grad, state["h"], state["c"], lstm)  # state updated in place
                p.add_(update.view_as(p).to(p.dtype), alpha=group["lr"])
                state["step"] += 1
        return loss

    # -- persistence -------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        for group in state["param_groups"]:
            group["net_fingerprint"] = self._fingerprint
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        for group in state_dict["param_groups"]:
            stored = group.get("net_fingerprint", self._fingerprint)
            if stored != self._fingerprint:
                raise CheckpointError(
                    f"optimizer state was saved with LSTM weights {stored}, but this optimizer's net is "
                    f"{self._fingerprint}; load the same checkpoint as when the state was saved"
                )
        super().load_state_dict(state_dict)
        for group in self.param_groups:
            group.pop("net_fingerprint", None)
