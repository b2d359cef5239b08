"""Pure functions of few-shot classification: similarities, attention, episode log-probabilities.

Matching Networks: Vinyals et al. 2016, "Matching Networks for One Shot Learning",
https://arxiv.org/abs/1606.04080 (Eq. 1-2 and Appendix A.2). Prototypical Networks: Snell et al.
2017, https://arxiv.org/abs/1703.05175 (Eq. 1-2).

Every function accepts any number of leading batch dimensions ``...`` (e.g. a batch of episodes), so
``(n_support, dim)`` and ``(n_episodes, n_support, dim)`` both work. Labels are integer class
positions within the episode, ``0 .. n_way - 1``.

This module imports only torch and math, holds no state and does no I/O.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

# --- similarities and attention ---------------------------------------------------------------------


def cosine_similarity(query: Tensor, support: Tensor, eps: float = 1e-8) -> Tensor:
    """Cosine similarity of every query with every support item: the paper's c(., .).

    Args:
        query: (..., n_query, dim).
        support: (..., n_support, dim).

    Returns:
        (..., n_query, n_support), in [-1, 1].
    """
    q = query / query.norm(dim=-1, keepdim=True).clamp_min(eps)
    s = support / support.norm(dim=-1, keepdim=True).clamp_min(eps)
    return q @ s.transpose(-1, -2)


def attention(similarities: Tensor) -> Tensor:
    """a(x̂, x_i) = exp(c_i) / Σ_j exp(c_j) (paper Eq. 2): softmax over the support dimension.

    Args:
        similarities: (..., n_query, n_support).

    Returns:
        (..., n_query, n_support), rows summing to 1.
    """
    return similarities.softmax(dim=-1)


def attention_readout(query_state: Tensor, memory: Tensor) -> Tensor:
    """Content-based read r = Σ_i softmax_i(h · g_i) g_i (paper Appendix A.2, the attention LSTM).

    Args:
        query_state: (..., n_query, dim), the h_{k-1} of each query.
        memory: (..., n_support, dim), the embedded support set g(S).

    Returns:
        (..., n_query, dim).
    """
    weights = (query_state @ memory.transpose(-1, -2)).softmax(dim=-1)  # (..., n_query, n_support)
    return weights @ memory


def _one_hot_mask(support_labels: Tensor, n_way: int) -> Tensor:
    """(..., n_support) int -> (..., n_support, n_way) bool."""
    return F.one_hot(support_labels.long(), n_way).bool()


# --- episode log-probabilities ----------------------------------------------------------------------


def matching_log_probs(
    support_embeddings: Tensor, support_labels: Tensor, query_embeddings: Tensor, n_way: int, scale: float = 1.0
) -> Tensor:
    """log P(y = c | x̂, S) = log Σ_{i: y_i = c} a(x̂, x_i) (paper Eq. 1-2), computed stably.

    With a = softmax(scale · cosine), the sum over a class's support items is a logsumexp of the
    log-attention restricted to that class, so no probability is ever exponentiated and then logged.

    Args:
        support_embeddings: (..., n_support, dim), g(x_i, S).
        support_labels: (..., n_support) int in ``0 .. n_way - 1``.
        query_embeddings: (..., n_query, dim), f(x̂, S).
        n_way: number of classes in the episode.
        scale: multiplies the cosine similarities before the softmax. The paper uses 1.

    Returns:
        (..., n_query, n_way) log-probabilities; a class without support items gets -inf.
    """
    log_attention = (scale * cosine_similarity(query_embeddings, support_embeddings)).log_softmax(dim=-1)
    mask = _one_hot_mask(support_labels, n_way).unsqueeze(-3)  # (..., 1, n_support, n_way)
    masked = log_attention.unsqueeze(-1).masked_fill(~mask, -math.inf)  # (..., n_query, n_support, n_way)
    return masked.logsumexp(dim=-2)


def prototypes(support_embeddings: Tensor, support_labels: Tensor, n_way: int) -> Tensor:
    """Class means c_k = mean of the support embeddings of class k (Snell et al. Eq. 1).

    Args:
        support_embeddings: (..., n_support, dim).
        support_labels: (..., n_support) int.

    Returns:
        (..., n_way, dim).
    """
    one_hot = _one_hot_mask(support_labels, n_way).to(support_embeddings.dtype)  # (..., n_support, n_way)
    sums = one_hot.transpose(-1, -2) @ support_embeddings  # (..., n_way, dim)
    counts = one_hot.sum(dim=-2).clamp_min(1.0).unsqueeze(-1)  # (..., n_way, 1)
    return sums / counts


def prototypical_log_probs(
    support_embeddings: Tensor, support_labels: Tensor, query_embeddings: Tensor, n_way: int
) -> Tensor:
    """log softmax_k(-||f(x̂) - c_k||²) (Snell et al. Eq. 2, squared Euclidean distance).

    Returns:
        (..., n_query, n_way).
    """
    protos = prototypes(support_embeddings, support_labels, n_way)  # (..., n_way, dim)
    # ||q - c||² = ||q||² - 2 q·c + ||c||², as one matmul (cdist is slower and has no batched double backward)
    sq = (
        query_embeddings.pow(2).sum(-1, keepdim=True)
        - 2.0 * query_embeddings @ protos.transpose(-1, -2)
        + protos.pow(2).sum(-1).unsqueeze(-2)
    )
    return (-sq).log_softmax(dim=-1)


def nearest_neighbour_scores(
    support_embeddings: Tensor, support_labels: Tensor, query_embeddings: Tensor, n_way: int
) -> Tensor:
    """Per class, the highest cosine similarity between the query and that class's support items.

    argmax over classes is cosine 1-nearest-neighbour classification (the paper's "Pixels" and
    "Baseline classifier" rows).

    Returns:
        (..., n_query, n_way) in [-1, 1]; a class without support items gets -inf.
    """
    sims = cosine_similarity(query_embeddings, support_embeddings)  # (..., n_query, n_support)
    mask = _one_hot_mask(support_labels, n_way).unsqueeze(-3)  # (..., 1, n_support, n_way)
    return sims.unsqueeze(-1).masked_fill(~mask, -math.inf).amax(dim=-2)


# --- scoring ----------------------------------------------------------------------------------------


def episode_accuracy(log_probs: Tensor, query_labels: Tensor) -> Tensor:
    """Fraction of correct argmax predictions per episode.

    Args:
        log_probs: (..., n_query, n_way).
        query_labels: (..., n_query).

    Returns:
        (...,) float.
    """
    return (log_probs.argmax(dim=-1) == query_labels).to(torch.float32).mean(dim=-1)


def mean_and_ci95(values: Tensor) -> tuple[float, float]:
    """Mean and the half-width of its normal-approximation 95% confidence interval, 1.96 σ / √n.

    Args:
        values: (n,) per-episode accuracies.
    """
    values = values.double().flatten()
    n = values.numel()
    if n == 0:
        return math.nan, math.nan
    std = float(values.std(unbiased=True)) if n > 1 else 0.0
    return float(values.mean()), 1.96 * std / math.sqrt(n)
