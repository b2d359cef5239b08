"""Pure functions of the chemical VAE (Gómez-Bombarelli et al., https://arxiv.org/abs/1610.02415).

Everything here is differentiable math on tensors: the reparameterisation trick, the Gaussian KL
against the standard-normal prior, the sigmoid KL-annealing schedule, the sequence reconstruction
loss, and the latent-space geometry used for interpolation. Imports only ``torch`` and ``math``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

# ---------------------------------------------------------------------------------------------
# the variational part


def reparameterize(mu: Tensor, logvar: Tensor, noise: Tensor) -> Tensor:
    """``z = mu + exp(logvar / 2) * noise`` (Kingma & Welling 2014, eq. 10).

    Args:
        mu, logvar: ``(batch, latent_dim)`` posterior mean and log-variance.
        noise: standard-normal sample of the same shape (passed in, so the function is pure).

    Returns:
        ``(batch, latent_dim)`` latent sample.
    """
    return mu + torch.exp(0.5 * logvar) * noise


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) summed over latent dims: ``(batch,)``.

    ``-0.5 * sum(1 + logvar - mu^2 - exp(logvar))`` (Kingma & Welling 2014, appendix B).
    """
    return -0.5 * torch.sum(1.0 + logvar - mu.pow(2) - logvar.exp(), dim=-1)


def kl_weight(epoch: float, *, midpoint: float, slope: float, maximum: float = 1.0) -> float:
    """Sigmoid KL-annealing weight at (fractional) ``epoch``.

    ``maximum / (1 + exp(-slope * (epoch - midpoint)))``, the schedule of the paper's reference code
    (``sigmoid_schedule(t, slope, start)``); ``midpoint`` is where the weight reaches half its maximum.
    """
    x = slope * (epoch - midpoint)
    if x < -60:
        return 0.0
    return maximum / (1.0 + math.exp(-x))


def cosine_lr_factor(epoch: float, *, start: float | None, end: float, final: float) -> float:
    """Learning-rate multiplier at (fractional) ``epoch``: 1 until ``start``, then half a cosine down
    to ``final`` at ``end`` (and ``final`` after it). ``start=None`` keeps the rate constant (the paper)."""
    if start is None or epoch <= start:
        return 1.0
    if epoch >= end or end <= start:
        return final
    progress = (epoch - start) / (end - start)
    return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * progress))


def at_least_fp32(x: Tensor) -> Tensor:
    """``x`` in float32 if it is in a lower precision (bf16/fp16 under autocast), else unchanged (float64 stays)."""
    return x if x.dtype == torch.float64 else x.float()


def reconstruction_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Cross-entropy summed over the sequence (padding included, as in the paper): ``(batch,)``.

    Args:
        logits: ``(batch, length, vocab)``.
        targets: ``(batch, length)`` token ids.
    """
    nll = F.cross_entropy(at_least_fp32(logits).transpose(1, 2), targets.long(), reduction="none")  # (batch, length)
    return nll.sum(dim=1)


def property_loss(predicted: Tensor, target: Tensor) -> Tensor:
    """Squared error summed over (normalised) properties: ``(batch,)``."""
    return (predicted.float() - target.float()).pow(2).sum(dim=-1)


# ---------------------------------------------------------------------------------------------
# latent geometry


def lerp(a: Tensor, b: Tensor, steps: int) -> Tensor:
    """``steps`` points on the segment from ``a`` to ``b`` (both ``(latent_dim,)``): ``(steps, latent_dim)``."""
    t = torch.linspace(0.0, 1.0, steps, dtype=a.dtype, device=a.device).unsqueeze(1)
    return (1.0 - t) * a + t * b


def slerp(a: Tensor, b: Tensor, steps: int, eps: float = 1e-7) -> Tensor:
    """Spherical interpolation (White 2016, "Sampling generative networks"): ``(steps, latent_dim)``.

    Falls back to :func:`lerp` when ``a`` and ``b`` are (anti)parallel.
    """
    t = torch.linspace(0.0, 1.0, steps, dtype=a.dtype, device=a.device).unsqueeze(1)
    cos = torch.dot(a, b) / (a.norm() * b.norm()).clamp_min(eps)
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    so = torch.sin(omega)
    if so.abs() < eps:
        return lerp(a, b, steps)
    return (torch.sin((1.0 - t) * omega) / so) * a + (torch.sin(t * omega) / so) * b


def perturb(z: Tensor, radius: float, noise: Tensor) -> Tensor:
    """Points at distance ``radius`` from ``z`` in the directions of ``noise``.

    Args:
        z: ``(latent_dim,)``.
        noise: ``(n, latent_dim)`` random directions (normalised here).

    Returns:
        ``(n, latent_dim)`` with ``||out_i - z|| = radius``.
    """
    direction = noise / noise.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return z.unsqueeze(0) + radius * direction
