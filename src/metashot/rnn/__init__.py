"""Phased LSTM (Neil, Pfeiffer & Liu, NIPS 2016, https://arxiv.org/abs/1610.09513).

- :mod:`~metashot.rnn.functional`       phase(), time_gate(), the gated LSTM step: pure, gradcheck-able
- :mod:`~metashot.rnn.phased_lstm`      PhasedLSTMCell, PhasedLSTM (nn.LSTMCell / nn.LSTM + ``times``)
- :mod:`~metashot.rnn.fused`            the time loop with a hand-written backward pass (default backend)
- :mod:`~metashot.rnn.bn_lstm`          BNLSTM, the batch-normalised LSTM baseline
- :mod:`~metashot.rnn.tasks`            frequency discrimination (3 samplings), adding task: seeded
- :mod:`~metashot.rnn.sequence_models`  encoder + read-out models for the tasks (``MODELS``)
- ``config`` / ``train`` / ``evaluate`` / ``cli`` / ``report``: runs, checkpoints, the CLI, the report
"""

from metashot.rnn import functional
from metashot.rnn.bn_lstm import BNLSTM
from metashot.rnn.phased_lstm import PhasedLSTM, PhasedLSTMCell
from metashot.rnn.sequence_models import MODELS, list_models
from metashot.rnn.tasks import TASKS, AddingTask, FrequencyTask, SequenceBatch, list_tasks

__all__ = [
    "BNLSTM",
    "MODELS",
    "TASKS",
    "AddingTask",
    "FrequencyTask",
    "PhasedLSTM",
    "PhasedLSTMCell",
    "SequenceBatch",
    "functional",
    "list_models",
    "list_tasks",
]
