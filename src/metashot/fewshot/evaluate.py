"""Evaluation on fixed, seeded test episodes: mean accuracy and 95% confidence interval.

Every method is scored on the same episodes: :func:`~metashot.fewshot.episodes.fixed_episodes`
depends only on the test classes, the episode shape and the seed. Models run in ``eval()`` mode
(batch-norm running statistics, no information shared between test episodes).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from metashot.config import from_dict
from metashot.data.omniglot import OmniglotDataset, load_omniglot
from metashot.errors import CheckpointError
from metashot.fewshot.baselines import PixelKNN
from metashot.fewshot.config import TEST_PARTS, TrainConfig
from metashot.fewshot.episodes import episode_from_indices, fixed_episodes
from metashot.fewshot.functional import episode_accuracy, mean_and_ci95
from metashot.fewshot.registry import build_model
from metashot.training import load_checkpoint, resolve_device

# ---------------------------------------------------------------------------------------------------


@dataclass
class EvaluationResult:
    """Accuracy over ``episodes`` test episodes; ``ci95`` is the 95% half-width (fractions)."""

    accuracy: float
    ci95: float
    per_episode: Tensor  # (episodes,)


def episodes_per_batch(images_per_episode: int, device: torch.device, max_images: int | None = None) -> int:
    """How many episodes to score in one forward pass.

    GPUs want big batches (8192 images). On CPU small ones are faster: a 28x28 Conv4 scores ~800
    images/s in batches of 80 but ~440 images/s in batches of 960 (1 thread; the first block's
    activations of a big batch no longer fit in cache), so CPU batches hold about 96 images.
    """
    limit = max_images or (8192 if device.type == "cuda" else 96)
    return max(1, limit // images_per_episode)


def load_model(checkpoint: str | os.PathLike[str], device: str | torch.device = "cpu") -> tuple[nn.Module, TrainConfig]:
    """Rebuild the model of a checkpoint (run folder or flat folder) in eval mode."""
    ckpt = load_checkpoint(checkpoint, map_location="cpu", groups=["model"])
    try:
        config = from_dict(TrainConfig, ckpt.config)
    except Exception as exc:  # a config of another system, or a damaged one
        raise CheckpointError(f"{checkpoint}: not a few-shot checkpoint ({exc})") from None
    model = build_model(config.model)
    try:
        model.load_state_dict(ckpt.group("model"))
    except RuntimeError as exc:
        raise CheckpointError(f"{checkpoint}: weights do not match the config ({str(exc).splitlines()[0]})") from None
    return model.to(resolve_device(device)).eval(), config


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    dataset: OmniglotDataset,
    *,
    n_way: int,
    n_shot: int,
    n_query: int = 15,
    n_episodes: int = 1000,
    seed: int = 0,
    device: str | torch.device = "cpu",
    max_images_per_batch: int | None = None,
) -> EvaluationResult:
    """Score ``model`` on the fixed episodes of ``seed`` drawn from ``dataset``."""
    dev = resolve_device(device)
    model = model.to(dev).eval()
    indices = fixed_episodes(dataset.labels, n_way, n_shot, n_query, n_episodes, seed, dataset.class_names)
    batch = episodes_per_batch(n_way * (n_shot + n_query), dev, max_images_per_batch)
    images = dataset.images.to(dev)
    accuracies = []
    for start in range(0, n_episodes, batch):
        idx = indices[start : start + batch].to(dev)
        episode = episode_from_indices(images, idx, n_shot)
        log_probs = model(episode.support_images, episode.support_labels, episode.query_images, n_way)
        accuracies.append(episode_accuracy(log_probs, episode.query_labels).cpu())
    per_episode = torch.cat(accuracies)
    accuracy, ci95 = mean_and_ci95(per_episode)
    return EvaluationResult(accuracy, ci95, per_episode)


def evaluate_setting(
    *,
    checkpoint: str | os.PathLike[str] | None,
    method: str | None = None,
    way: int,
    shot: int,
    query: int = 15,
    episodes: int = 1000,
    seed: int = 0,
    split: str | None = None,
    device: str = "auto",
    data_dir: str | None = None,
) -> dict[str, Any]:
    """The ``metashot fewshot evaluate`` computation: a JSON-ready dict.

    With ``method="pixels"`` no checkpoint is needed. Otherwise the checkpoint's config decides the
    method and (unless ``split`` is given) the split; the test part is always the split's test part.
    """
    dev = resolve_device(device)
    if method == "pixels":
        model: nn.Module = PixelKNN()
        split = split or "vinyals"
        name, full_context = "pixels", False
    else:
        if checkpoint is None:
            raise CheckpointError("evaluate needs --checkpoint DIR (or --method pixels, which needs none)")
        model, config = load_model(checkpoint, dev)
        if method is not None and method != config.model.method:
            raise CheckpointError(f"{checkpoint} holds a {config.model.method!r} model, not {method!r}")
        split = split or config.split
        name, full_context = config.model.method, config.model.full_context
    dataset = load_omniglot(TEST_PARTS[split], split=split, root=data_dir)
    result = evaluate(
        model, dataset, n_way=way, n_shot=shot, n_query=query, n_episodes=episodes, seed=seed, device=dev
    )
    return {
        "accuracy": result.accuracy,
        "ci95": result.ci95,
        "way": way,
        "shot": shot,
        "episodes": episodes,
        "query": query,
        "seed": seed,
        "method": name,
        "fce": full_context,
        "dataset": "omniglot",
        "split": split,
        "test_part": TEST_PARTS[split],
        "checkpoint": str(Path(checkpoint)) if checkpoint is not None and method != "pixels" else None,
    }
