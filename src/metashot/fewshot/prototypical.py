"""Prototypical Networks (Snell et al. 2017), the stronger later method, in the same harness.

Paper: https://arxiv.org/abs/1703.05175, Eq. 1-2: class prototypes are the mean support
embeddings, and queries are classified by a softmax over negative squared Euclidean distances.
"""

from __future__ import annotations

from torch import Tensor, nn

from metashot.fewshot.embeddings import Conv4, embed_episode, infer_n_way
from metashot.fewshot.functional import prototypical_log_probs


class PrototypicalNetwork(nn.Module):
    """log P(y = k | x̂) = log softmax_k(-||f(x̂) - c_k||²), c_k the mean of class k's support embeddings.

    Example:
        >>> model = PrototypicalNetwork()
        >>> model(torch.rand(10, 1, 28, 28), torch.arange(5).repeat(2), torch.rand(4, 1, 28, 28)).shape
        torch.Size([4, 5])
    """

    def __init__(self, embedding: nn.Module | None = None) -> None:
        super().__init__()
        self.embedding = embedding if embedding is not None else Conv4()

    def forward(
        self, support_images: Tensor, support_labels: Tensor, query_images: Tensor, n_way: int | None = None
    ) -> Tensor:
        """Same signature and shapes as :meth:`MatchingNetwork.forward`: (..., n_query, n_way)."""
        n_way = infer_n_way(support_labels, n_way)
        support, query = embed_episode(self.embedding, support_images, query_images)
        return prototypical_log_probs(support, support_labels, query, n_way)
