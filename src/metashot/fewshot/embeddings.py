"""The paper's embedding network for Omniglot, and a helper to embed a whole episode in one pass.

Vinyals et al. 2016, https://arxiv.org/abs/1606.04080, Section 4.1: "a simple yet powerful CNN
... four modules with a 3x3 convolution and 64 filters, followed by batch normalization, a ReLU
non-linearity and 2x2 max-pooling", giving a 64-dimensional vector for a 28x28 image.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

# ---------------------------------------------------------------------------------------------------


def _block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class Conv4(nn.Module):
    """Four [3x3 conv (``hidden_channels`` filters), batch norm, ReLU, 2x2 max-pool] blocks, flattened.

    For 28x28 inputs the spatial size goes 28 -> 14 -> 7 -> 3 -> 1, so the output has
    ``hidden_channels`` (64) features, about 0.11M parameters.

    Example:
        >>> net = Conv4()
        >>> net(torch.zeros(10, 1, 28, 28)).shape
        torch.Size([10, 64])
    """

    def __init__(self, in_channels: int = 1, hidden_channels: int = 64, num_blocks: int = 4) -> None:
        super().__init__()
        channels = [in_channels] + [hidden_channels] * num_blocks
        self.blocks = nn.Sequential(*[_block(a, b) for a, b in zip(channels[:-1], channels[1:])])
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels

    def forward(self, images: Tensor) -> Tensor:
        """(batch, in_channels, H, W) -> (batch, features); features = 64 for 28x28 input."""
        if images.device.type == "cpu":
            # oneDNN's channels-last convolutions: ~1.5x faster forward + backward on CPU (measured
            # for 80 28x28 images, 1 thread). GPUs keep the default layout (not measured there).
            images = images.contiguous(memory_format=torch.channels_last)
        return self.blocks(images).flatten(1)


def embed_episode(embedding: nn.Module, support_images: Tensor, query_images: Tensor) -> tuple[Tensor, Tensor]:
    """Embed support and query images of one or many episodes in **one** forward pass.

    Args:
        support_images: (..., n_support, C, H, W).
        query_images: (..., n_query, C, H, W), same leading dimensions.

    Returns:
        support (..., n_support, D) and query (..., n_query, D) embeddings.
    """
    lead = support_images.shape[:-4]
    n_support, n_query = support_images.shape[-4], query_images.shape[-4]
    image_shape = support_images.shape[-3:]
    flat = torch.cat(
        [support_images.reshape(-1, n_support, *image_shape), query_images.reshape(-1, n_query, *image_shape)], dim=1
    )  # (batch, n_support + n_query, C, H, W)
    features = embedding(flat.flatten(0, 1))  # (batch * (n_support + n_query), D)
    features = features.view(flat.shape[0], n_support + n_query, -1)
    support, query = features.split([n_support, n_query], dim=1)
    return support.reshape(*lead, n_support, -1), query.reshape(*lead, n_query, -1)


def infer_n_way(support_labels: Tensor, n_way: int | None) -> int:
    """``n_way`` if given, else 1 + the largest support label (one host sync; pass it in hot loops)."""
    return int(n_way) if n_way is not None else int(support_labels.max()) + 1
