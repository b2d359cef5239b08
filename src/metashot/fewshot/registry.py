"""The few-shot methods, as one small registry that the CLI, the tests and the benchmark enumerate.

Every method is an ``nn.Module`` with the same episode forward::

    log_probs = model(support_images, support_labels, query_images, n_way)   # (..., n_query, n_way)
"""

from __future__ import annotations

from torch import nn

from metashot.fewshot.baselines import BaselineClassifier, PixelKNN
from metashot.fewshot.config import ModelConfig
from metashot.fewshot.embeddings import Conv4
from metashot.fewshot.matching import MatchingNetwork
from metashot.fewshot.prototypical import PrototypicalNetwork

METHODS: dict[str, type[nn.Module]] = {
    "matching": MatchingNetwork,
    "protonet": PrototypicalNetwork,
    "baseline": BaselineClassifier,
    "pixels": PixelKNN,
}
TRAINABLE = ("matching", "protonet", "baseline")


def list_methods() -> list[str]:
    """Names of every method, trainable or not."""
    return list(METHODS)


def build_model(config: ModelConfig) -> nn.Module:
    """A fresh model for ``config`` (weights random; load a checkpoint's ``model`` group into it)."""
    embedding = Conv4(in_channels=config.in_channels, hidden_channels=config.hidden_channels)
    if config.method == "matching":
        return MatchingNetwork(
            embedding,
            full_context=config.full_context,
            read_steps=config.read_steps,
            scale=config.scale,
            embedding_dim=config.hidden_channels,
        )
    if config.method == "protonet":
        return PrototypicalNetwork(embedding)
    if config.method == "baseline":
        return BaselineClassifier(max(config.num_classes, 1), embedding, embedding_dim=config.hidden_channels)
    raise ValueError(f"no trainable model for method {config.method!r}")  # ModelConfig validates first
