"""The coordinate-wise LSTM optimizer network (Andrychowicz et al. 2016, arXiv:1606.04474, Sec. 2.1).

"LSTM^1 ... LSTM^n have shared weights, but separate hidden states": one small two-layer LSTM is
applied to every coordinate of the optimizee; the coordinates are its batch dimension.
"""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path

import torch
from torch import Tensor, nn

from metashot.config import from_dict
from metashot.optim.config import LSTMOptimizerConfig
from metashot.optim.functional import lstm_update, prepare_gates, update_block

# ---------------------------------------------------------------------------------------------------


class CoordinatewiseLSTM(nn.Module):
    """Two-layer LSTM (20 units per layer by default) with shared weights across coordinates.

    Paper: Andrychowicz et al., "Learning to learn by gradient descent by gradient descent",
    NIPS 2016, https://arxiv.org/abs/1606.04474 — Section 2.1 (coordinate-wise LSTM) and
    Appendix A (gradient preprocessing, p = 10). The update is ``output_scale * linear(h_top)``.

    Deviations from the paper: the gates of each layer are fused into one ``(4H, in + H)`` weight
    (one matmul per layer); the arithmetic is that of ``nn.LSTMCell``. The output layer starts at a
    small scale (std 0.01) so an untrained optimizer takes tiny steps rather than random ones.

    Example:
        >>> net = CoordinatewiseLSTM(LSTMOptimizerConfig(hidden_size=20, num_layers=2))
        >>> h, c = net.initial_state(5)
        >>> update, h, c = net(torch.randn(5), h, c)
        >>> update.shape, h.shape
        (torch.Size([5]), torch.Size([2, 5, 20]))
    """

    def __init__(self, config: LSTMOptimizerConfig | None = None) -> None:
        super().__init__()
        self.config = config or LSTMOptimizerConfig()
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

    # -- state -------------------------------------------------------------------------------------

    def initial_state(self, n: int, *, device: torch.device | str | None = None) -> tuple[Tensor, Tensor]:
        """Zero ``(h, c)`` for ``n`` coordinates, each ``(num_layers, n, hidden_size)``."""
        shape = (self.config.num_layers, n, self.config.hidden_size)
        dtype = self.out_weight.dtype
        device = device if device is not None else self.out_weight.device
        return torch.zeros(shape, dtype=dtype, device=device), torch.zeros(shape, dtype=dtype, device=device)

    # -- the step ----------------------------------------------------------------------------------

    def forward(self, grad: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``grad (n,)``, ``h, c (L, n, H)`` -> ``(update (n,), h_new, c_new)``; see :func:`lstm_update`."""
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
        )

    def _chunk_size(self, grad: Tensor) -> int | None:
        # Blocks keep the CPU working set in cache; on a GPU one launch over all coordinates is faster.
        return self.config.chunk_size if grad.device.type == "cpu" else None

    @torch.no_grad()
    def update_(self, grad: Tensor, h: Tensor, c: Tensor) -> Tensor:
        """Deployment step: like :meth:`forward`, but writes the new state into ``h`` and ``c``.

        Processes ``chunk_size`` coordinates at a time and overwrites each block's state in place,
        so the peak memory is the state plus one block's buffers (not two copies of the state).
        The values equal :meth:`forward`'s: the same :func:`lstm_update` runs on the same blocks.

        Returns:
            ``(n,)`` update.
        """
        cfg = self.config
        n = grad.shape[0]
        step = self._chunk_size(grad) or max(n, 1)
        update = torch.empty_like(grad)
        gates = [prepare_gates(w, b) for w, b in zip(self.weights, self.biases)]
        for start in range(0, n, step):
            stop = min(start + step, n)
            block, hs, cs = update_block(
                grad[start:stop], h[:, start:stop], c[:, start:stop], gates, self.out_weight, self.out_bias,
                preprocess=cfg.preprocess, p=cfg.preprocess_p, output_scale=cfg.output_scale,
            )
            update[start:stop] = block
            for layer in range(cfg.num_layers):
                h[layer, start:stop] = hs[layer]
                c[layer, start:stop] = cs[layer]
        return update

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
