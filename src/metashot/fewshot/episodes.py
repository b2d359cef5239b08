"""Episodes: an N-way K-shot sampler usable as a ``DataLoader`` batch sampler, and fixed test episodes.

An episode (Vinyals et al. 2016, Section 2.2) draws a label set L of ``n_way`` classes, then from
each class ``n_shot`` support and ``n_query`` query items, all distinct. Within an episode the
classes are renamed ``0 .. n_way - 1`` in the order they were drawn.

Two ways to use it:

- ``DataLoader(dataset, batch_sampler=sampler, collate_fn=sampler.collate)``: the sampler yields the
  indices of one episode grouped ``[way][shot + query]``, and ``collate`` only reshapes;
- the fast path: ``sampler.sample(n)`` returns an index tensor ``(n, n_way, n_shot + n_query)``
  (one vectorised draw, no Python loop per image) to index an image tensor already on the GPU;
  :func:`episode_from_indices` turns it into a batched :class:`Episode`.

Both draw from the sampler's own ``torch.Generator`` (never the global RNG), whose state a checkpoint
saves. :func:`fixed_episodes` gives every method the same test episodes from a seed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple

import torch
from torch import Tensor
from torch.utils.data import Sampler

from metashot.errors import EpisodeSizeError

# ---------------------------------------------------------------------------------------------------


class Episode(NamedTuple):
    """One episode (or a batch of them: every field gets the same leading dimensions).

    Attributes:
        support_images: (n_way * n_shot, C, H, W), grouped by class.
        support_labels: (n_way * n_shot,) int64 in ``0 .. n_way - 1``.
        query_images: (n_way * n_query, C, H, W), grouped by class.
        query_labels: (n_way * n_query,) int64.
        class_ids: (n_way,) the dataset's class index of each episode class.
    """

    support_images: Tensor
    support_labels: Tensor
    query_images: Tensor
    query_labels: Tensor
    class_ids: Tensor

    def to(self, device: torch.device | str) -> Episode:
        return Episode(*(t.to(device, non_blocking=True) for t in self))


class EpisodeSampler(Sampler[list[int]]):
    """Sample N-way K-shot episodes with Q queries per class from integer ``labels``.

    Validates at construction and raises :class:`EpisodeSizeError` naming the class and the fix.

    Args:
        labels: (N,) class index of every dataset item (e.g. ``dataset.labels``).
        n_way, n_shot, n_query: classes per episode, support and query items per class.
        n_episodes: episodes per pass (``len(sampler)``).
        generator: source of randomness (default: a fresh generator seeded with 0).
        class_names: names for error messages (default: ``"class 7"``).

    Example:
        >>> sampler = EpisodeSampler(torch.arange(10).repeat(20), n_way=5, n_shot=1, n_query=15,
        ...                          n_episodes=100, generator=torch.Generator().manual_seed(0))
        >>> sampler.sample(4).shape
        torch.Size([4, 5, 16])
    """

    def __init__(
        self,
        labels: Tensor | Sequence[int],
        n_way: int,
        n_shot: int,
        n_query: int,
        n_episodes: int,
        generator: torch.Generator | None = None,
        class_names: Sequence[str] | None = None,
    ) -> None:
        labels = torch.as_tensor(labels, dtype=torch.long).flatten().cpu()
        for name, value, low in (("n_way", n_way, 1), ("n_shot", n_shot, 1), ("n_query", n_query, 1), ("n_episodes", n_episodes, 0)):
            if int(value) < low:
                raise EpisodeSizeError(f"{name} must be >= {low}, got {value}")
        self.n_way, self.n_shot, self.n_query, self.n_episodes = int(n_way), int(n_shot), int(n_query), int(n_episodes)
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)
        classes, counts = torch.unique(labels, return_counts=True)
        names = list(class_names) if class_names is not None else None

        def name(c: int) -> str:
            return repr(names[c]) if names is not None and 0 <= c < len(names) else f"class {c}"

        if self.n_way > len(classes):
            raise EpisodeSizeError(
                f"n_way = {self.n_way} but the dataset has only {len(classes)} classes; lower the way to <= {len(classes)}"
            )
        needed = self.n_shot + self.n_query
        small = counts < needed
        if bool(small.any()):
            c = int(classes[small][0])
            size = int(counts[small][0])
            fix = (
                f"lower n_query to <= {size - self.n_shot}" if size > self.n_shot else f"lower n_shot to < {size}"
            )
            raise EpisodeSizeError(
                f"{name(c)} has {size} images but n_shot + n_query = {needed} ({self.n_shot} + {self.n_query}); "
                f"{fix} or exclude the class"
            )
        # members[j, :counts[j]] = dataset indices of class classes[j], padded with -1.
        order = torch.argsort(labels, stable=True)
        max_size = int(counts.max())
        self.members = torch.full((len(classes), max_size), -1, dtype=torch.long)
        offsets = torch.cumsum(counts, 0) - counts
        position = torch.arange(len(labels)) - offsets.repeat_interleave(counts)
        self.members[torch.arange(len(classes)).repeat_interleave(counts), position] = order
        self.counts = counts
        self.classes = classes
        self._uniform = bool((counts == max_size).all())

    @property
    def items_per_episode(self) -> int:
        return self.n_way * (self.n_shot + self.n_query)

    def __len__(self) -> int:
        return self.n_episodes

    def sample_with_classes(self, n: int) -> tuple[Tensor, Tensor]:
        """Draw ``n`` episodes: indices (n, n_way, n_shot + n_query) and class ids (n, n_way)."""
        g = self.generator
        num_classes, max_size = self.members.shape
        # n_way distinct classes per episode: the first n_way of a random permutation.
        chosen = torch.rand(n, num_classes, generator=g).argsort(dim=1)[:, : self.n_way]  # (n, n_way)
        # n_shot + n_query distinct items per class: a random permutation of the class's valid slots.
        keys = torch.rand(n, self.n_way, max_size, generator=g)  # (n, n_way, max_size)
        if not self._uniform:
            valid = torch.arange(max_size) < self.counts[chosen].unsqueeze(-1)  # (n, n_way, max_size)
            keys = keys.masked_fill(~valid, 2.0)  # padding sorts last
        slots = keys.argsort(dim=-1)[..., : self.n_shot + self.n_query]  # (n, n_way, shot + query)
        indices = torch.gather(self.members[chosen], 2, slots)
        return indices, self.classes[chosen]

    def sample(self, n: int) -> Tensor:
        """(n, n_way, n_shot + n_query) dataset indices of ``n`` episodes; shots first in each row."""
        return self.sample_with_classes(n)[0]

    def __iter__(self) -> Iterator[list[int]]:
        for _ in range(self.n_episodes):
            yield self.sample(1)[0].flatten().tolist()

    def collate(self, items: list[tuple[Tensor, int]]) -> Episode:
        """Build an :class:`Episode` from the ``n_way * (n_shot + n_query)`` items of one episode."""
        if len(items) != self.items_per_episode:
            raise EpisodeSizeError(f"collate got {len(items)} items, expected {self.items_per_episode} (one episode)")
        images = torch.stack([torch.as_tensor(image) for image, _ in items])
        labels = torch.as_tensor([int(label) for _, label in items])
        per_class = self.n_shot + self.n_query
        images = images.view(self.n_way, per_class, *images.shape[1:])  # (way, shot + query, C, H, W)
        return _split(images, labels.view(self.n_way, per_class)[:, 0], self.n_shot)


def _split(images: Tensor, class_ids: Tensor, n_shot: int) -> Episode:
    """images (..., n_way, n_shot + n_query, C, H, W) grouped by class -> Episode."""
    lead = images.shape[:-5]
    n_way, per_class = images.shape[-5], images.shape[-4]
    n_query = per_class - n_shot
    image_shape = images.shape[-3:]
    way = torch.arange(n_way, device=images.device)
    support = images[..., :n_shot, :, :, :].reshape(*lead, n_way * n_shot, *image_shape)
    query = images[..., n_shot:, :, :, :].reshape(*lead, n_way * n_query, *image_shape)
    support_labels = way.repeat_interleave(n_shot).expand(*lead, n_way * n_shot)
    query_labels = way.repeat_interleave(n_query).expand(*lead, n_way * n_query)
    return Episode(support, support_labels, query, query_labels, class_ids)


def episode_from_indices(images: Tensor, indices: Tensor, n_shot: int, class_ids: Tensor | None = None) -> Episode:
    """Gather a batch of episodes from an image tensor (on any device) by index; uint8 -> [0, 1] float.

    Args:
        images: (N, C, H, W), uint8 (0..255) or float.
        indices: (batch, n_way, n_shot + n_query) from :meth:`EpisodeSampler.sample`, on ``images``' device.
        n_shot: support items per class.

    Returns:
        An :class:`Episode` whose fields have a leading ``batch`` dimension.
    """
    batch = images[indices]  # (batch, n_way, shot + query, C, H, W)
    if batch.dtype == torch.uint8:
        batch = batch.to(torch.float32).div_(255.0)
    if class_ids is None:
        class_ids = torch.full(indices.shape[:2], -1, dtype=torch.long, device=indices.device)
    return _split(batch, class_ids, n_shot)


def fixed_episodes(
    labels: Tensor | Sequence[int],
    n_way: int,
    n_shot: int,
    n_query: int,
    n_episodes: int,
    seed: int,
    class_names: Sequence[str] | None = None,
) -> Tensor:
    """The test episodes of ``seed``: (n_episodes, n_way, n_shot + n_query) dataset indices.

    Depends only on the labels, the episode shape and the seed, so every method (and every run) is
    scored on exactly the same episodes.
    """
    sampler = EpisodeSampler(
        labels, n_way, n_shot, n_query, n_episodes, generator=torch.Generator().manual_seed(seed), class_names=class_names
    )
    return sampler.sample(n_episodes)
