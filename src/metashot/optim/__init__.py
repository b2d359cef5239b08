"""Learned optimizers: "Learning to learn by gradient descent by gradient descent"
(Andrychowicz et al., NIPS 2016, https://arxiv.org/abs/1606.04474).

- :mod:`~metashot.optim.functional`     preprocess_gradients, lstm_cell, lstm_update (pure math)
- :mod:`~metashot.optim.coordinatewise` CoordinatewiseLSTM: the optimizer network
- :mod:`~metashot.optim.learned`        LearnedOptimizer: a drop-in ``torch.optim.Optimizer``
- :mod:`~metashot.optim.tasks`          Task / Problem protocols; quadratic, MNIST MLP and CIFAR-10 conv families
- :mod:`~metashot.optim.meta`           unroll(): the truncated-BPTT meta-loss
- :mod:`~metashot.optim.train`          meta_train(): model selection, checkpoints, NaN safety
- :mod:`~metashot.optim.evaluate`       tuned baselines and compare()
"""

from metashot.optim.config import PRESETS, LSTMOptimizerConfig, MetaTrainConfig
from metashot.optim.coordinatewise import CoordinatewiseLSTM
from metashot.optim.evaluate import BASELINES, compare, list_optimizers, run_optimizer
from metashot.optim.functional import lstm_update, preprocess_gradients
from metashot.optim.learned import LearnedOptimizer
from metashot.optim.meta import UnrollState, init_state, unroll
from metashot.optim.tasks import (
    TASKS,
    CIFARConvTask,
    MNISTMLPTask,
    Problem,
    QuadraticTask,
    Task,
    list_tasks,
    make_task,
)
from metashot.optim.train import meta_train

__all__ = [
    "BASELINES",
    "PRESETS",
    "TASKS",
    "CIFARConvTask",
    "CoordinatewiseLSTM",
    "LSTMOptimizerConfig",
    "LearnedOptimizer",
    "MNISTMLPTask",
    "MetaTrainConfig",
    "Problem",
    "QuadraticTask",
    "Task",
    "UnrollState",
    "compare",
    "init_state",
    "list_optimizers",
    "list_tasks",
    "lstm_update",
    "make_task",
    "meta_train",
    "preprocess_gradients",
    "run_optimizer",
    "unroll",
]
