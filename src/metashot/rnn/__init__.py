"""Phased LSTM (Neil, Pfeiffer & Liu, NIPS 2016, https://arxiv.org/abs/1610.09513).

- :mod:`~metashot.rnn.functional`   phase(), time_gate(), gated LSTM step: pure, gradcheck-able
- :mod:`~metashot.rnn.phased_lstm`  PhasedLSTMCell, PhasedLSTM (nn.LSTMCell / nn.LSTM + ``times``)
"""

from metashot.rnn.phased_lstm import PhasedLSTM, PhasedLSTMCell

__all__ = ["PhasedLSTM", "PhasedLSTMCell"]
