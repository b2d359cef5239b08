"""Baselines of the paper's Table 1, scored in the same harness as Matching Networks.

Vinyals et al. 2016, https://arxiv.org/abs/1606.04080, Section 4.1.1, Table 1:

- "Pixels": cosine nearest neighbour on raw pixels (:class:`PixelKNN`);
- "Baseline classifier": a conv net trained to classify all training classes; at test time its
  features (the layer before the softmax) with cosine nearest neighbour (:class:`BaselineClassifier`).

Both return scores shaped like the other methods' log-probabilities, so one evaluation loop serves
all. For nearest neighbour the "probabilities" are a softmax over each class's best cosine
similarity times ``scale``: only their argmax (the nearest neighbour's class) is the paper's method.
"""

from __future__ import annotations

from torch import Tensor, nn

from metashot.fewshot.embeddings import Conv4, embed_episode, infer_n_way
from metashot.fewshot.functional import nearest_neighbour_scores

# ---------------------------------------------------------------------------------------------------


class PixelKNN(nn.Module):
    """Cosine 1-nearest neighbour in pixel space (the paper's "Pixels" row); no parameters.

    Example:
        >>> PixelKNN()(torch.rand(5, 1, 28, 28), torch.arange(5), torch.rand(3, 1, 28, 28)).shape
        torch.Size([3, 5])
    """

    def __init__(self, scale: float = 10.0) -> None:
        super().__init__()
        self.scale = scale

    def forward(
        self, support_images: Tensor, support_labels: Tensor, query_images: Tensor, n_way: int | None = None
    ) -> Tensor:
        """(..., n_support, C, H, W), (..., n_support), (..., n_query, C, H, W) -> (..., n_query, n_way)."""
        n_way = infer_n_way(support_labels, n_way)
        support = support_images.flatten(-3).float()  # (..., n_support, C*H*W)
        query = query_images.flatten(-3).float()
        scores = nearest_neighbour_scores(support, support_labels, query, n_way)
        return (self.scale * scores).log_softmax(dim=-1)


class BaselineClassifier(nn.Module):
    """A Conv4 classifier over the training classes; few-shot by cosine NN on its features.

    Train with :meth:`classify` (ordinary cross-entropy over ``num_classes``); the episode
    ``forward`` ignores the classifier head and does cosine 1-nearest-neighbour on the 64-D features.

    Example:
        >>> model = BaselineClassifier(num_classes=100)
        >>> model.classify(torch.rand(8, 1, 28, 28)).shape
        torch.Size([8, 100])
    """

    def __init__(self, num_classes: int, embedding: nn.Module | None = None, embedding_dim: int = 64,
                 scale: float = 10.0) -> None:
        super().__init__()
        self.embedding = embedding if embedding is not None else Conv4()
        self.head = nn.Linear(embedding_dim, num_classes)
        self.scale = scale

    def classify(self, images: Tensor) -> Tensor:
        """(batch, C, H, W) -> (batch, num_classes) logits."""
        return self.head(self.embedding(images))

    def forward(
        self, support_images: Tensor, support_labels: Tensor, query_images: Tensor, n_way: int | None = None
    ) -> Tensor:
        """Same signature and shapes as :meth:`MatchingNetwork.forward`: (..., n_query, n_way)."""
        n_way = infer_n_way(support_labels, n_way)
        support, query = embed_episode(self.embedding, support_images, query_images)
        return (self.scale * nearest_neighbour_scores(support, support_labels, query, n_way)).log_softmax(dim=-1)
