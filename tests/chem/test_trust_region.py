"""TuRBO trust region for latent-space Bayesian optimisation: side-length rules and the box."""

from __future__ import annotations

import math

import torch

from metashot.chem.optimize import TrustRegion, trust_region_box


def test_failure_tolerance_follows_turbo():
    assert TrustRegion(dim=64, batch=10).failure_tolerance == math.ceil(64 / 10)
    assert TrustRegion(dim=2, batch=10).failure_tolerance == 1  # ceil(max(4/10, 2/10))


def test_successes_double_failures_halve_and_a_collapsed_region_restarts():
    region = TrustRegion(dim=4, batch=2)  # failure tolerance 2
    for _ in range(3):
        region.update(True)
    assert region.length == 1.6  # 0.8 doubled once after 3 successes
    for _ in range(3):
        region.update(True)
    assert region.length == 1.6  # capped at length_max
    region.update(False)
    assert region.length == 1.6 and region.failures == 1
    region.update(True)  # a success resets the failure count
    region.update(False)
    assert region.length == 1.6
    region.update(False)
    assert region.length == 0.8
    for _ in range(2 * 7):  # 7 halvings of 0.8 go below 0.5**7
        region.update(False)
    assert region.restarts == 1 and region.length == 0.8


def test_box_is_centred_scaled_by_lengthscales_and_clipped_to_the_unit_cube():
    center = torch.tensor([0.5, 0.5, 0.95], dtype=torch.float64)
    lengthscales = torch.tensor([1.0, 2.0, 1.0], dtype=torch.float64)
    low, high = trust_region_box(center, lengthscales, 0.4)
    weights = lengthscales / lengthscales.log().mean().exp()
    assert torch.allclose(weights.prod(), torch.tensor(1.0, dtype=torch.float64))  # volume length**dim
    torch.testing.assert_close(high[:2] - low[:2], 0.4 * weights[:2])
    assert (high[1] - low[1]) > (high[0] - low[0])  # wider where the GP varies slowly
    assert high[2] == 1.0 and low[2] < 0.95  # clipped at the cube's face
    assert torch.all((low <= center) & (center <= high))
