"""Every method in the registry: shapes, gradients, invariances, batching, safetensors round trip."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file

from metashot.fewshot import METHODS, MatchingNetwork, ModelConfig, build_model, list_methods
from metashot.fewshot.matching import QueryContext


def _model(name: str) -> torch.nn.Module:
    if name == "pixels":
        return METHODS["pixels"]()
    return build_model(ModelConfig(method=name, num_classes=7, hidden_channels=8))


def _episode(n_way=3, n_shot=2, n_query=2, batch=(), seed=0):
    g = torch.Generator().manual_seed(seed)
    support = torch.rand(*batch, n_way * n_shot, 1, 28, 28, generator=g)
    labels = torch.arange(n_way).repeat_interleave(n_shot).expand(*batch, n_way * n_shot)
    query = torch.rand(*batch, n_way * n_query, 1, 28, 28, generator=g)
    return support, labels, query


VARIANTS = [*list_methods(), "matching-fce"]


def _variant(name: str) -> torch.nn.Module:
    if name == "matching-fce":
        return build_model(ModelConfig(method="matching", full_context=True, read_steps=3, hidden_channels=8))
    return _model(name)


@pytest.mark.parametrize("name", VARIANTS)
def test_every_method_returns_normalised_log_probs_of_shape_query_by_way(name):
    model = _variant(name).eval()
    support, labels, query = _episode()
    with torch.no_grad():
        out = model(support, labels, query, 3)
    assert out.shape == (6, 3)
    torch.testing.assert_close(out.exp().sum(-1), torch.ones(6))


@pytest.mark.parametrize("name", VARIANTS)
def test_a_batch_of_episodes_equals_the_episodes_one_at_a_time(name):
    model = _variant(name).eval()
    support, labels, query = _episode(batch=(2,))
    with torch.no_grad():
        batched = model(support, labels, query, 3)
        single = torch.stack([model(support[i], labels[i], query[i], 3) for i in range(2)])
    torch.testing.assert_close(batched, single, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["matching", "matching-fce", "protonet"])
def test_backward_reaches_every_parameter(name):
    model = _variant(name).train()
    support, labels, query = _episode()
    loss = torch.nn.functional.nll_loss(model(support, labels, query, 3), torch.arange(3).repeat_interleave(2))
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing


def test_baseline_classifier_head_trains_and_reaches_every_parameter():
    model = _model("baseline").train()
    logits = model.classify(torch.rand(4, 1, 28, 28))
    assert logits.shape == (4, 7)
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2, 3])).backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("name", ["matching", "protonet", "baseline", "pixels"])
def test_permuting_the_support_set_leaves_predictions_unchanged_without_fce(name):
    model = _model(name).eval()
    support, labels, query = _episode(n_way=4, n_shot=3)
    perm = torch.randperm(12, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        torch.testing.assert_close(
            model(support, labels, query, 4), model(support[perm], labels[perm], query, 4), rtol=1e-5, atol=1e-6
        )


def test_full_context_embeddings_make_the_support_order_matter():
    """The FCE BiLSTM reads the support set as a sequence: the permutation test above must fail for it."""
    model = _variant("matching-fce").eval()
    support, labels, query = _episode(n_way=4, n_shot=3)
    perm = torch.randperm(12, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        assert not torch.allclose(model(support, labels, query, 4), model(support[perm], labels[perm], query, 4))


def test_query_context_with_one_read_step_is_the_lstm_of_the_paper_equation():
    torch.manual_seed(0)
    context = QueryContext(4, read_steps=1)
    query, support = torch.randn(1, 2, 4), torch.randn(1, 3, 4)
    # k = 1: h_0 = c_0 = 0, r_0 = mean of g(S) (uniform attention), h_1 = LSTM(f', [h_0, r_0], c_0) + f'.
    r0 = support.mean(dim=1, keepdim=True).expand(1, 2, 4)
    cell = context.cell
    h, _ = cell(torch.cat([query, r0], -1).view(2, 8), (torch.zeros(2, 4), torch.zeros(2, 4)))
    torch.testing.assert_close(context(query, support), (h + query.view(2, 4)).view(1, 2, 4))


def test_model_state_dict_round_trips_through_safetensors(tmp_path):
    model = MatchingNetwork(full_context=True, read_steps=2)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "m.safetensors"))
    other = MatchingNetwork(full_context=True, read_steps=2)
    other.load_state_dict(load_file(str(tmp_path / "m.safetensors")))
    for (k, a), b in zip(model.state_dict().items(), other.state_dict().values()):
        assert torch.equal(a, b), k


def test_conv4_has_about_a_tenth_of_a_million_parameters_and_64_features():
    model = MatchingNetwork()
    assert 100_000 < sum(p.numel() for p in model.parameters()) < 120_000
    assert model.embedding(torch.zeros(2, 1, 28, 28)).shape == (2, 64)


def test_model_config_rejects_fce_for_other_methods():
    from metashot.errors import UsageError

    with pytest.raises(UsageError, match="--fce"):
        ModelConfig(method="protonet", full_context=True)


@pytest.mark.parametrize("name", sorted(__import__("metashot.fewshot.config", fromlist=["PRESETS"]).PRESETS))
def test_every_preset_round_trips_through_json_and_builds_its_model(name):
    from metashot.config import from_dict, to_dict
    from metashot.fewshot.config import TrainConfig, get_preset

    config = get_preset(name)
    assert from_dict(TrainConfig, to_dict(config)) == config
    assert isinstance(build_model(config.model), torch.nn.Module)
