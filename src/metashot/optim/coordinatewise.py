"""The coordinate-wise LSTM optimizer network (Andrychowicz et al. 2016, arXiv:1606.04474, Sec. 2.1).

"LSTM^1 ... LSTM^n have shared weights, but separate hidden states": one small two-layer LSTM is
applied to every coordinate of the optimizee; the coordinates are its batch dimension.
"""

from __future__ import annotations

import fnmatch
import hashlib
import math
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch
from torch import Tensor, nn

from metashot.config import from_dict
from metashot.errors import CheckpointError, UsageError
from metashot.optim.config import LSTMOptimizerConfig
from metashot.optim.functional import MOMENT_ROWS, lstm_update, prepare_gates, update_block

# ---------------------------------------------------------------------------------------------------

# The state layout of :meth:`CoordinatewiseLSTM.initial_state`, ``(layers, hidden, coordinates)``, as
# recorded next to saved states (optimizer ``state_dict``s, mid-horizon meta-training checkpoints).
# metashot 0.1 saved ``(layers, coordinates, hidden)`` and recorded no layout.
STATE_LAYOUT = "layers-hidden-coordinates"


def state_from_layout(tensor: Tensor, layout: str | None, what: str) -> Tensor:
    """A saved ``h`` or ``c`` in :data:`STATE_LAYOUT`: as is when ``layout`` is it, transposed from
    metashot 0.1's ``(layers, coordinates, hidden)`` when ``layout`` is None (not recorded).

    Raises:
        CheckpointError: an unknown ``layout`` (saved by a newer metashot?), naming ``what`` was loaded.
    """
    if layout == STATE_LAYOUT:
        return tensor
    if layout is None:
        return tensor.transpose(1, 2)
    raise CheckpointError(f"unknown {what} layout {layout!r}; this metashot reads {STATE_LAYOUT!r} "
                          "(saved by a newer metashot?)")


class CoordinatewiseLSTM(nn.Module):
    """Two-layer LSTM (20 units per layer by default) with shared weights across coordinates.

    Paper: Andrychowicz et al., "Learning to learn by gradient descent by gradient descent",
    NIPS 2016, https://arxiv.org/abs/1606.04474 — Section 2.1 (coordinate-wise LSTM) and
    Appendix A (gradient preprocessing, p = 10). The update is ``output_scale * linear(h_top)``.

    Deviations from the paper: the gates of each layer are fused into one ``(4H, in + H)`` weight
    (one matmul per layer); the arithmetic is that of ``nn.LSTMCell``. The output layer starts at a
    small scale (std 0.01) so an untrained optimizer takes tiny steps rather than random ones.

    Separate LSTMs (paper, Section 3.3, "one LSTM for the conv and one for the fully connected
    layers"): with ``config.lstm_groups = ("conv", "fc")`` the module holds ``lstms[0]`` and
    ``lstms[1]``, each a plain one-LSTM ``CoordinatewiseLSTM``; :meth:`lstm_index` routes a
    parameter name to its LSTM, and ``forward``/``update_`` take that index. The default (no
    groups) keeps the original parameters and ``state_dict`` keys, so older checkpoints load as before.

    Example:
        >>> net = CoordinatewiseLSTM(LSTMOptimizerConfig(hidden_size=20, num_layers=2))
        >>> h, c = net.initial_state(5)
        >>> update, h, c = net(torch.randn(5), h, c)
        >>> update.shape, h.shape
        (torch.Size([5]), torch.Size([2, 20, 5]))
    """

    def __init__(self, config: LSTMOptimizerConfig | None = None) -> None:
        super().__init__()
        self.config = config or LSTMOptimizerConfig()
        if self.config.lstm_groups:
            # Separate LSTMs (paper, Section 3.3: one for the conv and one for the fully connected
            # parameters): ``lstms[i]`` serves the parameters whose name matches ``lstm_groups[i]``.
            single = replace(self.config, lstm_groups=())
            self.lstms = nn.ModuleList([CoordinatewiseLSTM(single) for _ in self.config.lstm_groups])
            self._routes: dict[str, int] = {}
            return
        hidden = self.config.hidden_size
        bound = 1.0 / math.sqrt(hidden)  # nn.LSTM's initialisation
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for layer in range(self.config.num_layers):
            fan_in = (self.config.input_size if layer == 0 else hidden) + hidden
            self.weights.append(nn.Parameter(torch.empty(4 * hidden, fan_in).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(4 * hidden).uniform_(-bound, bound)))
        self.out_weight = nn.Parameter(torch.randn(1, hidden) * 0.01)
        self.out_bias = nn.Parameter(torch.zeros(1))
        # (weights' storage and version, their prepare_gates) for deployment steps; see _deployment_gates
        self._gates_cache: tuple[tuple[tuple[int, int], ...], list[tuple[Tensor, Tensor]]] | None = None

    # -- separate LSTMs per parameter group --------------------------------------------------------

    @property
    def num_lstms(self) -> int:
        """1 (one LSTM shared by all coordinates, the default) or ``len(config.lstm_groups)``."""
        return max(1, len(self.config.lstm_groups))

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def lstm_index(self, name: str | None) -> int:
        """Which LSTM serves parameter ``name``: the first ``lstm_groups`` pattern it matches.

        A pattern without wildcards is a prefix (``"conv"`` matches ``"conv0.weight"``); otherwise
        it is an ``fnmatch`` pattern (``"*"`` catches everything). Always 0 with one shared LSTM.

        Raises:
            UsageError: separate LSTMs and ``name`` is None or matches no pattern.
        """
        groups = self.config.lstm_groups
        if not groups:
            return 0
        if name is None:
            raise UsageError(
                f"this optimizer has separate LSTMs for parameter groups {list(groups)}: it needs parameter "
                "names (pass model.named_parameters()) or param groups with 'lstm': <group>"
            )
        if name not in self._routes:
            for i, pattern in enumerate(groups):
                wild = any(ch in pattern for ch in "*?[")
                if fnmatch.fnmatchcase(name, pattern if wild else pattern + "*"):
                    self._routes[name] = i
                    break
            else:
                raise UsageError(
                    f"parameter {name!r} matches none of the LSTM groups {list(groups)}; add a pattern for it "
                    "(e.g. '*' last, for everything else)"
                )
        return self._routes[name]

    def group_index(self, group: int | str) -> int:
        """The LSTM index of ``group``: an index, or one of ``config.lstm_groups`` (e.g. ``"conv"``)."""
        if isinstance(group, str):
            if group not in self.config.lstm_groups:
                raise UsageError(f"unknown LSTM group {group!r}; this optimizer has {list(self.config.lstm_groups)}")
            return self.config.lstm_groups.index(group)
        if not 0 <= group < self.num_lstms:
            raise UsageError(f"LSTM index {group} out of range: this optimizer has {self.num_lstms} LSTM(s)")
        return int(group)

    # -- state -------------------------------------------------------------------------------------

    def initial_state(self, n: int, *, device: torch.device | str | None = None) -> tuple[Tensor, Tensor]:
        """Zero ``(h, c)`` for ``n`` coordinates, each ``(num_layers, hidden_size, n)``: coordinates last (the
        same for every LSTM; see :mod:`metashot.optim.functional` for why)."""
        shape = (self.config.num_layers, self.config.hidden_size, n)
        dtype = self.dtype
        device = device if device is not None else self.device
        return torch.zeros(shape, dtype=dtype, device=device), torch.zeros(shape, dtype=dtype, device=device)

    @property
    def uses_moments(self) -> bool:
        """Whether each coordinate also keeps gradient moments (``preprocess="adam"``): then
        :meth:`forward` and :meth:`update_` take ``moments`` from :meth:`initial_moments`."""
        return self.config.uses_moments

    def initial_moments(self, n: int, *, device: torch.device | str | None = None) -> Tensor | None:
        """Zero ``(3, n)`` moment state (rows m, v, w of :func:`~metashot.optim.functional.adam_features`)
        when :attr:`uses_moments`, else None."""
        if not self.uses_moments:
            return None
        return torch.zeros(MOMENT_ROWS, n, dtype=self.dtype, device=device if device is not None else self.device)

    def _check_moments(self, moments: Tensor | None) -> None:
        if self.uses_moments and moments is None:
            raise UsageError("this optimizer (preprocess 'adam') keeps gradient moments: pass moments= "
                             "(start from net.initial_moments(n))")
        if not self.uses_moments and moments is not None:
            raise UsageError(f"this optimizer (preprocess {self.config.preprocess!r}) keeps no moments; pass none")

    # -- the step ----------------------------------------------------------------------------------

    def forward(
        self, grad: Tensor, h: Tensor, c: Tensor, lstm: int = 0, *, moments: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor] | tuple[Tensor, Tensor, Tensor, Tensor]:
        """``grad (n,)``, ``h, c (L, H, n)`` -> ``(update (n,), h_new, c_new)``; see :func:`lstm_update`.

        ``lstm``: which LSTM (see :meth:`lstm_index`); only 0 when one LSTM is shared by all.
        ``moments``: the ``(3, n)`` moment state, required exactly when :attr:`uses_moments`; then the
        new moments are returned too, ``(update, h_new, c_new, moments_new)``.
        """
        if self.config.lstm_groups:
            return self.lstms[lstm](grad, h, c, moments=moments)
        if lstm != 0:
            raise UsageError(f"LSTM index {lstm} out of range: this optimizer has one shared LSTM")
        self._check_moments(moments)
        cfg = self.config
        return lstm_update(
            grad,
            h,
            c,
            list(self.weights),
            list(self.biases),
            self.out_weight,
            self.out_bias,
            preprocess=cfg.preprocess,
            p=cfg.preprocess_p,
            output_scale=cfg.output_scale,
            chunk_size=self._chunk_size(grad),
            output_activation=cfg.output_activation,
            moments=moments,
            moment_decay=cfg.moment_decay,
        )

    def _chunk_size(self, grad: Tensor) -> int | None:
        # Blocks keep the CPU working set in cache. On a GPU one launch over many coordinates is faster
        # (launches decide the speed), so its blocks are large: they only bound the temporaries.
        return self.config.chunk_size if grad.device.type == "cpu" else self.config.accelerator_chunk_size

    @torch.no_grad()
    def update_(self, grad: Tensor, h: Tensor, c: Tensor, lstm: int = 0, *, moments: Tensor | None = None,
                block_fn: Callable[..., tuple[Tensor, list[Tensor], list[Tensor], Tensor | None]] = update_block
                ) -> Tensor:
        """Deployment step: like :meth:`forward`, but writes the new state into ``h`` and ``c`` (and ``moments``).

        Processes ``chunk_size`` coordinates at a time and overwrites each block's state in place,
        so the peak memory is the state plus one block's buffers (not two copies of the state).
        The values equal :meth:`forward`'s: the same :func:`lstm_update` runs on the same blocks.
        ``block_fn``: :func:`update_block` or a compiled version of it (``torch.compile``).

        Returns:
            ``(n,)`` update.
        """
        if self.config.lstm_groups:
            return self.lstms[lstm].update_(grad, h, c, moments=moments, block_fn=block_fn)
        if lstm != 0:
            raise UsageError(f"LSTM index {lstm} out of range: this optimizer has one shared LSTM")
        self._check_moments(moments)
        cfg = self.config
        n = grad.shape[0]
        step = self._chunk_size(grad) or max(n, 1)
        update = torch.empty_like(grad)
        gates = self._deployment_gates()
        for start in range(0, n, step):
            stop = min(start + step, n)
            block, hs, cs, ms = block_fn(
                grad[start:stop], h[..., start:stop], c[..., start:stop], gates, self.out_weight, self.out_bias,
                preprocess=cfg.preprocess, p=cfg.preprocess_p, output_scale=cfg.output_scale,
                output_activation=cfg.output_activation,
                moments=None if moments is None else moments[:, start:stop], moment_decay=cfg.moment_decay,
            )
            update[start:stop] = block
            if moments is not None:
                moments[:, start:stop] = ms
            for layer in range(cfg.num_layers):
                h[layer, :, start:stop] = hs[layer]
                c[layer, :, start:stop] = cs[layer]
        return update

    def _deployment_gates(self) -> list[tuple[Tensor, Tensor]]:
        """:func:`prepare_gates` of every layer, kept until a weight changes (its version or storage):
        a deployed optimizer's weights are constant, so this saves a few kernels per step."""
        key = tuple((t.data_ptr(), t._version) for t in (*self.weights, *self.biases))
        cached = self._gates_cache
        if cached is None or cached[0] != key:
            cached = (key, [prepare_gates(w.detach(), b.detach()) for w, b in zip(self.weights, self.biases)])
            self._gates_cache = cached
        return cached[1]

    # -- persistence -------------------------------------------------------------------------------

    def fingerprint(self) -> str:
        """Short sha256 of the weights: stored in optimizer state to detect a swapped network."""
        digest = hashlib.sha256()
        for name, tensor in sorted(self.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().to("cpu", torch.float64).contiguous().numpy().tobytes())
        return digest.hexdigest()[:16]

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike[str], *, map_location: str = "cpu") -> CoordinatewiseLSTM:
        """Load a meta-trained optimizer from a run folder, its ``best/`` folder or a flat folder.

        A run folder written by ``metashot optim meta-train`` is resolved to its ``best/`` model
        (selected on held-out optimizees) when present, else to its latest checkpoint.
        """
        from metashot.training import load_checkpoint

        path = Path(path)
        if (path / "best" / "model.safetensors").is_file():
            path = path / "best"
        checkpoint = load_checkpoint(path, map_location=map_location, groups=["model"])
        config = checkpoint.config.get("net", checkpoint.config)
        net = cls(from_dict(LSTMOptimizerConfig, config))
        net.load_state_dict(checkpoint.group("model"))
        return net
