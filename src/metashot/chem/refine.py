"""Refining the encoder's posterior by gradient ascent on the ELBO (semi-amortised inference).

Beyond the paper. The encoder ``q(z|x) = N(mu(x), diag(exp(logvar(x))))`` is *amortised*: one network
guesses the posterior of every molecule, and its guess can be worse than the best Gaussian for that
molecule (the "amortisation gap", Cremer et al. 2018). Starting from the encoder's guess, a few steps
of Adam on ``mu`` and ``logvar`` of each molecule maximise that molecule's objective the model was
trained on (Kim et al. 2018, "Semi-amortized variational autoencoders"; Marino et al. 2018)::

    loss(mu, logvar) = sum_t CE(y_t | z, y_<t) + kl_weight * KL(N(mu, exp(logvar)) || N(0, I)),
    z = mu + exp(logvar / 2) * eps,   eps ~ N(0, I)   (``samples`` draws per step, averaged)

with the decoder's weights fixed. It needs only the molecule itself (like the encoder), so it is an
encoder, not a decoder, change: a better ``mu`` for every latent-space operation that starts from a
known molecule (perturb, interpolate, optimisation seeds). ``kl_weight`` defaults to the weight the
model was trained with at the end, so the refined posterior is the one that training objective prefers.

Each molecule's loss depends only on its own ``mu``/``logvar`` and Adam is element-wise, so refining a
batch refines every molecule independently (the result does not depend on the batch it was in).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from metashot.chem.functional import at_least_fp32, gaussian_kl, reconstruction_loss, reparameterize
from metashot.chem.vae import SmilesVAE
from metashot.errors import UsageError
from metashot.training import progress as progress_bar

__all__ = ["RefineSettings", "Refined", "decode_length", "elbo_loss", "refine_in_batches", "refine_posterior"]


@dataclass(frozen=True)
class RefineSettings:
    """How to refine encodings: ``steps`` Adam steps of size ``lr`` on the ``kl_weight``-weighted ELBO
    (:func:`refine_posterior`); ``seed`` seeds the noise."""

    steps: int
    lr: float
    kl_weight: float
    samples: int = 1
    seed: int = 0

    def describe(self) -> str:
        return (f"encoder, then {self.steps} Adam steps (lr {self.lr}) per molecule on its ELBO "
                f"(KL weight {self.kl_weight}, {self.samples} noise draw(s) per step)")


@dataclass
class Refined:
    """Refined posteriors: ``mu``/``logvar`` ``(batch, latent_dim)``; ``loss_before``/``loss_after``
    ``(batch,)`` the per-molecule loss (nats; ``kl_weight``-weighted) at the encoder's guess and at the
    returned point, both measured with the same noise draws (``check_samples`` of them)."""

    mu: Tensor
    logvar: Tensor
    loss_before: Tensor
    loss_after: Tensor


def decode_length(ids: Tensor) -> int:
    """Positions worth decoding for ``ids`` ``(batch, max_length)``: up to the longest molecule's end token."""
    lengths = (ids != 0).sum(dim=1)
    return min(ids.shape[1], int(lengths.max()) + 1)


def elbo_loss(model: SmilesVAE, ids: Tensor, mu: Tensor, logvar: Tensor, noise: Tensor, kl_weight: float) -> Tensor:
    """Per-molecule ``sum_t CE + kl_weight * KL`` ``(batch,)`` at ``z = mu + sigma * noise``.

    Args:
        ids: ``(batch, length)`` target token ids (already trimmed to the positions that matter).
        mu, logvar, noise: ``(batch, latent_dim)``.
    """
    z = reparameterize(mu, logvar, noise)
    logits = model.decode_logits(z, ids)
    return reconstruction_loss(logits, ids) + kl_weight * gaussian_kl(at_least_fp32(mu), at_least_fp32(logvar))


def refine_posterior(
    model: SmilesVAE, ids: Tensor, mu: Tensor, logvar: Tensor, *, steps: int = 50, lr: float = 0.05,
    kl_weight: float, samples: int = 1, check_samples: int = 4, seed: int = 0,
) -> Refined:
    """Refine the posteriors of the molecules ``ids`` ``(batch, max_length)`` (see the module docstring).

    Args:
        mu, logvar: ``(batch, latent_dim)`` the encoder's guess (the starting point; not modified).
        steps: Adam steps (0 returns the guess). lr: Adam's step size (latent units).
        kl_weight: weight of the KL term (the model's final training weight is the natural choice).
        samples: noise draws per step (1 = the usual single-sample ELBO gradient).
        check_samples: noise draws, shared by the before/after comparison; a molecule whose loss did
            not go down keeps the encoder's guess, so refinement never makes an estimate worse.
        seed: seeds the noise (a CPU generator: the same draws on every device).

    Returns:
        :class:`Refined`.
    """
    if steps < 0 or not 0 < lr < float("inf") or samples < 1 or check_samples < 1:
        raise UsageError(f"refinement needs steps >= 0, lr > 0, samples >= 1 (got {steps}, {lr}, {samples})")
    device = mu.device
    ids = ids[:, : decode_length(ids)].to(device)
    gen = torch.Generator().manual_seed(seed)
    check_noise = torch.randn(check_samples, *mu.shape, generator=gen).to(device)
    was_training = model.training
    model.eval()
    frozen = [p for p in model.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    try:
        with torch.no_grad():
            before = _mean_loss(model, ids, mu, logvar, check_noise, kl_weight)
        m = mu.detach().clone().requires_grad_(True)
        lv = logvar.detach().clone().requires_grad_(True)
        opt = torch.optim.Adam([m, lv], lr=lr)
        with torch.enable_grad():
            for _ in range(steps):
                noise = torch.randn(samples, *mu.shape, generator=gen).to(device)
                loss = _mean_loss(model, ids, m, lv, noise, kl_weight).sum()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        with torch.no_grad():
            after = _mean_loss(model, ids, m, lv, check_noise, kl_weight)
            better = after < before
            out_mu = torch.where(better.unsqueeze(1), m.detach(), mu)
            out_lv = torch.where(better.unsqueeze(1), lv.detach(), logvar)
            return Refined(out_mu, out_lv, before, torch.minimum(after, before))
    finally:
        for p in frozen:
            p.requires_grad_(True)
        model.train(was_training)


def _mean_loss(model: SmilesVAE, ids: Tensor, mu: Tensor, logvar: Tensor, noise: Tensor, kl_weight: float) -> Tensor:
    """:func:`elbo_loss` averaged over the draws ``noise`` ``(draws, batch, latent_dim)``: ``(batch,)``."""
    return torch.stack([elbo_loss(model, ids, mu, logvar, n, kl_weight) for n in noise]).mean(dim=0)


def refine_in_batches(model: SmilesVAE, ids: Tensor, mu: Tensor, logvar: Tensor, settings: RefineSettings, *,
                      batch_size: int = 500, progress: bool = False) -> Refined:
    """:func:`refine_posterior` over ``batch_size`` molecules at a time (bounded memory); same shapes.

    Batch ``k`` uses the noise seed ``settings.seed + k``.
    """
    starts = progress_bar(range(0, ids.shape[0], batch_size), desc=f"refining encodings ({settings.steps} steps)",
                          disable=not progress)
    parts = [
        refine_posterior(model, ids[s : s + batch_size], mu[s : s + batch_size], logvar[s : s + batch_size],
                         steps=settings.steps, lr=settings.lr, kl_weight=settings.kl_weight,
                         samples=settings.samples, seed=settings.seed + k)
        for k, s in enumerate(starts)
    ]
    if not parts:
        empty = mu[:0]
        return Refined(empty, logvar[:0], empty[:, 0], empty[:, 0])
    return Refined(*(torch.cat([getattr(p, f) for p in parts]) for f in ("mu", "logvar", "loss_before", "loss_after")))
