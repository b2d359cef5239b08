"""Whole models for the paper's tasks: a recurrent encoder + a linear read-out of the final state.

``MODELS`` maps the CLI's ``--model`` to a class; every class takes the same keyword arguments
(``input_size``, ``hidden_size``, ``output_size`` and :class:`~metashot.rnn.config.ModelConfig`
fields) and has ``forward(inputs (B, T, I), times (B, T), lengths (B,)) -> (B, output_size)``.

As in the paper (section 3.1), the LSTM baselines get the timestamp as an extra input feature
(raw, in ms, by default; ``time_input_scale`` rescales it), while the Phased LSTM sees it only
through its time gate.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from metashot.rnn.bn_lstm import BNLSTM
from metashot.rnn.phased_lstm import PhasedLSTM

# ---------------------------------------------------------------------------------------------


def _last_output(output: Tensor, lengths: Tensor) -> Tensor:
    """``output (B, T, H)`` at each sequence's last real step -> ``(B, H)``."""
    index = (lengths.to(output.device) - 1).view(-1, 1, 1).expand(-1, 1, output.shape[-1])
    return output.gather(1, index).squeeze(1)


class PhasedLSTMModel(nn.Module):
    """Phased LSTM encoder + linear head on the last layer's final hidden state."""

    def __init__(
        self,
        *,
        input_size: int,
        hidden_size: int,
        output_size: int,
        num_layers: int = 1,
        r_on: float = 0.05,
        learn_r_on: bool = True,
        leak: float = 1e-3,
        period_init_range: tuple[float, float] = (math.e, math.e**6),
        max_steps: int = 0,
        time_input_scale: float = 1.0,
    ) -> None:
        super().__init__()
        del max_steps, time_input_scale  # baseline-only options
        self.rnn = PhasedLSTM(
            input_size, hidden_size, num_layers, batch_first=True, r_on=r_on, learn_r_on=learn_r_on, leak=leak,
            period_init_range=period_init_range,
        )
        self.head = nn.Linear(hidden_size, output_size)

    def forward(self, inputs: Tensor, times: Tensor, lengths: Tensor) -> Tensor:
        _, (h_n, _) = self.rnn(inputs, times, lengths=lengths)
        return self.head(h_n[-1])  # (B, output_size)

    def constrain_(self) -> None:
        self.rnn.constrain_()


class LSTMModel(nn.Module):
    """``nn.LSTM`` (cuDNN on GPU) baseline; input = ``[x, t]``; head on the last real step's output."""

    def __init__(self, *, input_size: int, hidden_size: int, output_size: int, num_layers: int = 1,
                 time_input_scale: float = 1.0, **_: object) -> None:
        super().__init__()
        self.time_input_scale = time_input_scale
        self.rnn = nn.LSTM(input_size + 1, hidden_size, num_layers, batch_first=True)
        self.head = nn.Linear(hidden_size, output_size)

    def forward(self, inputs: Tensor, times: Tensor, lengths: Tensor) -> Tensor:
        x = torch.cat([inputs, self.time_input_scale * times.unsqueeze(-1)], dim=-1)  # (B, T, I + 1)
        output, _ = self.rnn(x)  # causal: outputs before the padding do not see it
        return self.head(_last_output(output, lengths))

    def constrain_(self) -> None:
        pass


class BNLSTMModel(nn.Module):
    """Batch-normalised LSTM baseline; input = ``[x, t]``."""

    def __init__(self, *, input_size: int, hidden_size: int, output_size: int, max_steps: int = 1000,
                 time_input_scale: float = 1.0, **_: object) -> None:
        super().__init__()
        self.time_input_scale = time_input_scale
        self.rnn = BNLSTM(input_size + 1, hidden_size, max_stat_steps=max(1, max_steps))
        self.head = nn.Linear(hidden_size, output_size)

    def forward(self, inputs: Tensor, times: Tensor, lengths: Tensor) -> Tensor:
        x = torch.cat([inputs, self.time_input_scale * times.unsqueeze(-1)], dim=-1)
        _, (h, _) = self.rnn(x, lengths=lengths)
        return self.head(h)

    def constrain_(self) -> None:
        pass


MODELS: dict[str, type[nn.Module]] = {"plstm": PhasedLSTMModel, "lstm": LSTMModel, "bnlstm": BNLSTMModel}


def list_models() -> list[str]:
    """Names accepted by ``--model``."""
    return list(MODELS)
