"""Pure functions: reparameterisation, KL, annealing, interpolation (gradcheck in float64)."""

from __future__ import annotations

import math

import pytest
import torch
from torch.autograd import gradcheck

from metashot.chem import functional as F


def _pair(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(3, 5, generator=g, dtype=torch.float64), torch.randn(3, 5, generator=g, dtype=torch.float64)


def test_reparameterize_passes_gradcheck_and_matches_definition() -> None:
    mu, logvar = _pair()
    noise = torch.randn(3, 5, dtype=torch.float64)
    assert gradcheck(lambda m, lv: F.reparameterize(m, lv, noise), (mu.requires_grad_(), logvar.requires_grad_()))
    assert torch.allclose(F.reparameterize(mu, logvar, noise), mu + torch.exp(logvar / 2) * noise)


def test_gaussian_kl_matches_torch_distributions_and_passes_gradcheck() -> None:
    mu, logvar = _pair(1)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    expected = torch.distributions.kl_divergence(q, p).sum(-1)
    assert torch.allclose(F.gaussian_kl(mu, logvar), expected)
    assert gradcheck(F.gaussian_kl, (mu.requires_grad_(), logvar.requires_grad_()))
    assert torch.allclose(F.gaussian_kl(torch.zeros(2, 4), torch.zeros(2, 4)), torch.zeros(2))


def test_kl_weight_is_a_sigmoid_with_half_weight_at_the_midpoint() -> None:
    assert math.isclose(F.kl_weight(5.0, midpoint=5.0, slope=1.0, maximum=0.6), 0.3)
    values = [F.kl_weight(e, midpoint=5.0, slope=2.0) for e in range(12)]
    assert all(a < b for a, b in zip(values, values[1:]))
    assert values[0] < 1e-4 and values[-1] > 0.9999
    assert F.kl_weight(-1e6, midpoint=0.0, slope=1.0) == 0.0  # no overflow far from the midpoint


def test_reconstruction_loss_equals_summed_cross_entropy() -> None:
    logits = torch.randn(2, 4, 6, dtype=torch.float64)
    targets = torch.randint(0, 6, (2, 4))
    naive = torch.stack([sum(-torch.log_softmax(logits[b, t], -1)[targets[b, t]] for t in range(4)) for b in range(2)])
    assert torch.allclose(F.reconstruction_loss(logits, targets).double(), naive)


def test_lerp_and_slerp_start_and_end_at_the_endpoints() -> None:
    a, b = torch.randn(7, dtype=torch.float64), torch.randn(7, dtype=torch.float64)
    for path in (F.lerp(a, b, 5), F.slerp(a, b, 5)):
        assert path.shape == (5, 7)
        assert torch.allclose(path[0], a) and torch.allclose(path[-1], b)
    # slerp between equal-norm vectors keeps the norm
    b = b / b.norm() * a.norm()
    assert torch.allclose(F.slerp(a, b, 9).norm(dim=1), a.norm().expand(9))


def test_perturb_puts_points_exactly_at_the_radius() -> None:
    z = torch.randn(6)
    out = F.perturb(z, 2.5, torch.randn(10, 6))
    assert torch.allclose((out - z).norm(dim=1), torch.full((10,), 2.5), atol=1e-5)


def test_cosine_lr_factor_is_constant_then_decays_smoothly_to_the_final_fraction() -> None:
    from metashot.chem.functional import cosine_lr_factor

    assert cosine_lr_factor(7.0, start=None, end=10.0, final=0.05) == 1.0  # the paper: constant
    assert cosine_lr_factor(4.0, start=5.0, end=10.0, final=0.05) == 1.0
    assert cosine_lr_factor(7.5, start=5.0, end=10.0, final=0.05) == pytest.approx(0.525)  # halfway
    assert cosine_lr_factor(10.0, start=5.0, end=10.0, final=0.05) == pytest.approx(0.05)
    assert cosine_lr_factor(12.0, start=5.0, end=10.0, final=0.05) == pytest.approx(0.05)
    values = [cosine_lr_factor(5.0 + 0.1 * i, start=5.0, end=10.0, final=0.05) for i in range(51)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_lr_schedule_settings_are_checked() -> None:
    from metashot.chem.config import TrainConfig
    from metashot.errors import UsageError

    with pytest.raises(UsageError, match="lr_final"):
        TrainConfig(lr_final=0.0)
    with pytest.raises(UsageError, match="lr_decay_start"):
        TrainConfig(epochs=10.0, lr_decay_start=12.0)
