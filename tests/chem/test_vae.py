"""SmilesVAE: shapes, gradients reach every parameter, paper sizes, free-running decoding."""

from __future__ import annotations

import torch

from metashot.chem.config import PRESETS, VAEConfig
from metashot.chem.vae import SmilesVAE


def _tiny() -> SmilesVAE:
    torch.manual_seed(0)
    return SmilesVAE(12, PRESETS["tiny"].model)


def test_encode_decode_shapes() -> None:
    vae = _tiny()
    cfg = vae.config
    ids = torch.randint(0, 12, (3, cfg.max_length))
    mu, logvar = vae.encode(ids)
    assert mu.shape == logvar.shape == (3, cfg.latent_dim)
    out = vae(ids)
    assert out.logits.shape == (3, cfg.max_length, 12)
    assert out.property_pred.shape == (3, 3)
    assert vae(ids, decode_length=17).logits.shape == (3, 17, 12)
    gen = vae.generate(mu, temperature=0.0)
    assert gen.shape == (3, cfg.max_length) and gen.dtype == torch.long
    assert int((gen == 1).sum()) == 0  # BOS is never emitted


def test_backward_reaches_every_parameter() -> None:
    vae = _tiny()
    out = vae(torch.randint(0, 12, (4, vae.config.max_length)))
    (out.logits.sum() + out.mu.sum() + out.logvar.sum() + out.property_pred.sum()).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in vae.parameters())


def test_paper_sizes_by_default() -> None:
    vae = SmilesVAE(36)
    assert vae.config == VAEConfig()
    assert vae.gru.hidden_size == 488 and vae.gru.num_layers == 3
    assert vae.to_mu.out_features == 196
    assert [m.out_channels for m in vae.convs if isinstance(m, torch.nn.Conv1d)] == [9, 9, 10]
    assert [m.kernel_size[0] for m in vae.convs if isinstance(m, torch.nn.Conv1d)] == [9, 9, 11]


def test_sampled_decoding_is_reproducible_with_a_generator_and_greedy_is_deterministic() -> None:
    vae = _tiny().eval()
    z = torch.randn(4, vae.config.latent_dim)
    a = vae.generate(z, temperature=1.0, generator=torch.Generator().manual_seed(3))
    b = vae.generate(z, temperature=1.0, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert torch.equal(vae.generate(z), vae.generate(z))
    # after the first pad everything is pad
    for row in a.tolist():
        if 0 in row:
            assert all(t == 0 for t in row[row.index(0):])


def test_word_dropout_hides_the_previous_tokens_and_keeping_all_changes_nothing() -> None:
    vae = _tiny().eval()
    length = 20
    ids = torch.randint(2, 12, (3, length))
    other = torch.randint(2, 12, (3, length))  # different previous tokens
    z = torch.randn(3, vae.config.latent_dim)
    keep_all = torch.ones(3, length, dtype=torch.bool)
    drop_all = torch.zeros(3, length, dtype=torch.bool)
    assert torch.equal(vae.decode_logits(z, ids, keep_all), vae.decode_logits(z, ids))
    # with every previous token hidden the logits depend on z only
    assert torch.allclose(vae.decode_logits(z, ids, drop_all), vae.decode_logits(z, other, drop_all))
    assert not torch.allclose(vae.decode_logits(z, ids), vae.decode_logits(z, other))
    # hiding one position changes the logits from that position on, not before it
    keep = keep_all.clone()
    keep[:, 5] = False
    a, b = vae.decode_logits(z, ids, keep), vae.decode_logits(z, ids)
    assert torch.equal(a[:, :5], b[:, :5]) and not torch.allclose(a[:, 5:], b[:, 5:])


def test_word_dropout_out_of_range_is_refused() -> None:
    import pytest

    from metashot.chem.config import TrainConfig
    from metashot.errors import UsageError

    with pytest.raises(UsageError, match="word_dropout"):
        TrainConfig(word_dropout=1.0)
