"""Pure functions: against naive loops, gradcheck in float64, invariances."""

from __future__ import annotations

import math

import pytest
import torch

from metashot.fewshot import functional as fn


def _naive_matching_probs(support, labels, query, n_way):
    """The paper's Eq. 1-2 written as loops: a = exp(c) / Σ exp(c), ŷ = Σ a_i y_i."""
    out = torch.zeros(query.shape[0], n_way, dtype=torch.float64)
    for q in range(query.shape[0]):
        sims = []
        for i in range(support.shape[0]):
            a, b = query[q], support[i]
            sims.append(float(a @ b) / (math.sqrt(float(a @ a)) * math.sqrt(float(b @ b))))
        denominator = sum(math.exp(s) for s in sims)
        for i, s in enumerate(sims):
            out[q, int(labels[i])] += math.exp(s) / denominator
    return out


def test_cosine_attention_matches_a_naive_loop_reference():
    g = torch.Generator().manual_seed(0)
    support = torch.randn(7, 5, generator=g, dtype=torch.float64)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 2])
    query = torch.randn(4, 5, generator=g, dtype=torch.float64)
    expected = _naive_matching_probs(support, labels, query, 3)
    got = fn.matching_log_probs(support, labels, query, 3, scale=1.0).exp()
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)
    sims = fn.cosine_similarity(query, support)
    torch.testing.assert_close(fn.attention(sims).sum(-1), torch.ones(4, dtype=torch.float64))


def test_matching_log_probs_are_normalised_and_batched_like_single_episodes():
    g = torch.Generator().manual_seed(1)
    support, query = torch.randn(3, 10, 8, generator=g), torch.randn(3, 6, 8, generator=g)
    labels = torch.arange(5).repeat(2).expand(3, 10)
    batched = fn.matching_log_probs(support, labels, query, 5, scale=10.0)
    assert batched.shape == (3, 6, 5)
    torch.testing.assert_close(batched.exp().sum(-1), torch.ones(3, 6))
    for b in range(3):
        torch.testing.assert_close(batched[b], fn.matching_log_probs(support[b], labels[b], query[b], 5, scale=10.0))


def test_matching_log_probs_are_stable_with_large_scales():
    support, query = torch.randn(4, 3), torch.randn(2, 3)
    out = fn.matching_log_probs(support, torch.tensor([0, 1, 2, 3]), query, 4, scale=1e4)
    assert torch.isfinite(out.logsumexp(-1)).all()


@pytest.mark.parametrize(
    "function", [fn.matching_log_probs, fn.prototypical_log_probs], ids=["matching", "prototypical"]
)
def test_log_prob_functions_pass_gradcheck_in_float64(function):
    g = torch.Generator().manual_seed(2)
    support = torch.randn(6, 4, generator=g, dtype=torch.float64, requires_grad=True)
    query = torch.randn(3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    assert torch.autograd.gradcheck(lambda s, q: function(s, labels, q, 3), (support, query))


def test_attention_readout_passes_gradcheck_and_equals_weighted_sum():
    g = torch.Generator().manual_seed(3)
    h = torch.randn(2, 3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    memory = torch.randn(2, 5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(fn.attention_readout, (h, memory))
    weights = torch.softmax(torch.einsum("bqd,bsd->bqs", h, memory), dim=-1)
    torch.testing.assert_close(fn.attention_readout(h, memory), torch.einsum("bqs,bsd->bqd", weights, memory))


def test_permuting_the_support_set_leaves_every_score_unchanged():
    g = torch.Generator().manual_seed(4)
    support, query = torch.randn(10, 6, generator=g), torch.randn(5, 6, generator=g)
    labels = torch.arange(5).repeat(2)
    perm = torch.randperm(10, generator=g)
    for function in (fn.matching_log_probs, fn.prototypical_log_probs, fn.nearest_neighbour_scores):
        torch.testing.assert_close(function(support, labels, query, 5), function(support[perm], labels[perm], query, 5))


def test_prototypes_are_class_means_and_distances_match_cdist():
    support = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0], [0.0, 6.0]])
    labels = torch.tensor([0, 0, 1, 1])
    torch.testing.assert_close(fn.prototypes(support, labels, 2), torch.tensor([[1.0, 0.0], [0.0, 5.0]]))
    query = torch.tensor([[1.0, 1.0]])
    expected = (-torch.cdist(query, fn.prototypes(support, labels, 2)).pow(2)).log_softmax(-1)
    torch.testing.assert_close(fn.prototypical_log_probs(support, labels, query, 2), expected)


def test_nearest_neighbour_picks_the_most_similar_support_item():
    support = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]])
    labels = torch.tensor([0, 1, 1])
    query = torch.tensor([[1.0, 0.1], [0.6, 0.8]])
    scores = fn.nearest_neighbour_scores(support, labels, query, 2)
    assert scores.argmax(-1).tolist() == [0, 1]


def test_mean_and_ci95_use_the_normal_approximation():
    values = torch.tensor([1.0, 0.0, 1.0, 1.0])
    mean, half = fn.mean_and_ci95(values)
    assert mean == pytest.approx(0.75)
    assert half == pytest.approx(1.96 * 0.5 / 2.0)
    assert fn.mean_and_ci95(torch.ones(5)) == (1.0, 0.0)
