"""One-shot learning: Matching Networks (Vinyals et al. 2016) with baselines, on Omniglot.

https://arxiv.org/abs/1606.04080. The pieces:

- :mod:`~metashot.fewshot.functional`   cosine attention, matching / prototype log-probabilities (pure)
- :mod:`~metashot.fewshot.episodes`     :class:`EpisodeSampler` (a ``Sampler``), :class:`Episode`, fixed test episodes
- :mod:`~metashot.fewshot.embeddings`   :class:`Conv4`, the paper's embedding network
- :mod:`~metashot.fewshot.matching`     :class:`MatchingNetwork` with full context embeddings
- :mod:`~metashot.fewshot.prototypical` :class:`PrototypicalNetwork`
- :mod:`~metashot.fewshot.baselines`    :class:`PixelKNN`, :class:`BaselineClassifier`
- :mod:`~metashot.fewshot.registry`     ``METHODS``, :func:`build_model`
- :mod:`~metashot.fewshot.train` / :mod:`~metashot.fewshot.evaluate` / :mod:`~metashot.fewshot.predict`
"""

from metashot.fewshot.baselines import BaselineClassifier, PixelKNN
from metashot.fewshot.config import PRESETS, EpisodeConfig, ModelConfig, TrainConfig, list_presets
from metashot.fewshot.embeddings import Conv4
from metashot.fewshot.episodes import Episode, EpisodeSampler, episode_from_indices, fixed_episodes
from metashot.fewshot.evaluate import EvaluationResult, evaluate, load_model
from metashot.fewshot.matching import MatchingNetwork, QueryContext, SupportContext
from metashot.fewshot.prototypical import PrototypicalNetwork
from metashot.fewshot.registry import METHODS, build_model, list_methods
from metashot.fewshot.train import TrainResult, train

__all__ = [
    "METHODS",
    "PRESETS",
    "BaselineClassifier",
    "Conv4",
    "Episode",
    "EpisodeConfig",
    "EpisodeSampler",
    "EvaluationResult",
    "MatchingNetwork",
    "ModelConfig",
    "PixelKNN",
    "PrototypicalNetwork",
    "QueryContext",
    "SupportContext",
    "TrainConfig",
    "TrainResult",
    "build_model",
    "episode_from_indices",
    "evaluate",
    "fixed_episodes",
    "list_methods",
    "list_presets",
    "load_model",
    "train",
]
