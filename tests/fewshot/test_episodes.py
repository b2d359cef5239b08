"""EpisodeSampler: shapes, distinctness, reproducibility, DataLoader use, and its error messages."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from metashot.errors import EpisodeSizeError
from metashot.fewshot import EpisodeSampler, episode_from_indices, fixed_episodes


def _labels(num_classes=10, per_class=20):
    return torch.arange(num_classes).repeat_interleave(per_class)


def test_sampled_episodes_have_distinct_classes_and_items_of_the_right_class():
    labels = _labels()
    sampler = EpisodeSampler(labels, n_way=5, n_shot=2, n_query=3, n_episodes=50)
    indices, class_ids = sampler.sample_with_classes(50)
    assert indices.shape == (50, 5, 5) and class_ids.shape == (50, 5)
    for episode, classes in zip(indices, class_ids):
        assert len(set(classes.tolist())) == 5
        assert len(set(episode.flatten().tolist())) == 25
        assert (labels[episode] == classes.unsqueeze(1)).all()


def test_same_generator_seed_gives_the_same_episodes():
    labels = _labels()
    a = EpisodeSampler(labels, 5, 1, 5, 10, generator=torch.Generator().manual_seed(7)).sample(10)
    b = EpisodeSampler(labels, 5, 1, 5, 10, generator=torch.Generator().manual_seed(7)).sample(10)
    c = EpisodeSampler(labels, 5, 1, 5, 10, generator=torch.Generator().manual_seed(8)).sample(10)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(fixed_episodes(labels, 5, 1, 5, 10, seed=3), fixed_episodes(labels, 5, 1, 5, 10, seed=3))


def test_uneven_class_sizes_never_yield_padding_or_repeats():
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate([3, 8, 4, 20, 5])])
    sampler = EpisodeSampler(labels, n_way=5, n_shot=1, n_query=2, n_episodes=200)
    indices = sampler.sample(200)
    assert (indices >= 0).all()
    for episode in indices:
        assert len(set(episode.flatten().tolist())) == 15


def test_sampler_works_as_a_dataloader_batch_sampler_with_its_collate():
    labels = _labels(6, 10)
    images = labels.view(-1, 1, 1, 1).float().expand(-1, 1, 4, 4).clone()  # each image holds its class
    sampler = EpisodeSampler(labels, n_way=3, n_shot=2, n_query=4, n_episodes=4)
    loader = DataLoader(TensorDataset(images, labels), batch_sampler=sampler, collate_fn=sampler.collate)
    episodes = list(loader)
    assert len(episodes) == 4
    ep = episodes[0]
    assert ep.support_images.shape == (6, 1, 4, 4) and ep.query_images.shape == (12, 1, 4, 4)
    assert ep.support_labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert ep.query_labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    # every image's pixel value is its dataset class, which must be class_ids[label]
    assert torch.equal(ep.support_images[:, 0, 0, 0].long(), ep.class_ids[ep.support_labels])
    assert torch.equal(ep.query_images[:, 0, 0, 0].long(), ep.class_ids[ep.query_labels])


def test_episode_from_indices_batches_and_scales_uint8_images():
    images = torch.arange(20, dtype=torch.uint8).view(20, 1, 1, 1).expand(20, 1, 2, 2).contiguous()
    labels = torch.arange(4).repeat_interleave(5)
    indices = EpisodeSampler(labels, 2, 1, 3, 3).sample(3)
    ep = episode_from_indices(images, indices, n_shot=1)
    assert ep.support_images.shape == (3, 2, 1, 2, 2) and ep.query_images.shape == (3, 6, 1, 2, 2)
    assert ep.support_images.dtype == torch.float32 and float(ep.support_images.max()) <= 19 / 255 + 1e-6
    assert ep.query_labels.shape == (3, 6)


def test_sampler_raises_when_a_class_has_fewer_images_than_shots_plus_queries():
    labels = _labels(10, 20)
    names = [f"Sanskrit/character{c + 1:02d}" for c in range(10)]
    with pytest.raises(EpisodeSizeError, match="has 20 images") as info:
        EpisodeSampler(labels, n_way=5, n_shot=5, n_query=20, n_episodes=1, class_names=names)
    message = str(info.value)
    assert "'Sanskrit/character01' has 20 images but n_shot + n_query = 25 (5 + 20)" in message
    assert "lower n_query to <= 15 or exclude the class" in message


def test_sampler_raises_when_shots_alone_exceed_a_class():
    with pytest.raises(EpisodeSizeError, match=r"class 0 has 3 images .*lower n_shot to < 3"):
        EpisodeSampler(_labels(5, 3), n_way=2, n_shot=4, n_query=1, n_episodes=1)


def test_sampler_raises_when_more_ways_than_classes():
    with pytest.raises(EpisodeSizeError, match=r"n_way = 30 but the dataset has only 10 classes; lower the way to <= 10"):
        EpisodeSampler(_labels(10, 20), n_way=30, n_shot=1, n_query=1, n_episodes=1)


@pytest.mark.parametrize("field", ["n_way", "n_shot", "n_query"])
def test_sampler_rejects_non_positive_sizes(field):
    kwargs = {"n_way": 2, "n_shot": 1, "n_query": 1, field: 0}
    with pytest.raises(EpisodeSizeError, match=f"{field} must be >= 1, got 0"):
        EpisodeSampler(_labels(), n_episodes=1, **kwargs)
