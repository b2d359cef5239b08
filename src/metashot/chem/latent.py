"""Latent-space operations of the chemical VAE (Gómez-Bombarelli et al., sections 2-3, figures 2-4).

encode / decode (greedy or sampled with a temperature), decode a point many times and keep the
distinct valid molecules with their frequencies (as the paper does), prior samples, neighbours at a
radius, linear and spherical interpolation. Property optimisation lives in :mod:`.optimize`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from metashot.chem import functional as Fn
from metashot.chem.beam import beam_search
from metashot.chem.refine import RefineSettings, refine_in_batches
from metashot.chem.smiles import BadMolecule, SmilesVocab
from metashot.chem.vae import SmilesVAE
from metashot.errors import InvalidSmilesError, UsageError

__all__ = [
    "Encoded",
    "decode",
    "decode_beams",
    "decode_many",
    "decoding_label",
    "encode",
    "interpolate",
    "perturb",
    "sample_prior",
]


@dataclass
class Encoded:
    """Encoded molecules: ``smiles`` (canonical), ``mu``/``logvar`` ``(n, latent_dim)`` (refined if asked),
    rejected inputs, and ``encoder_mu``, the encoder's own mean (``mu`` itself when nothing was refined)."""

    smiles: list[str]
    mu: Tensor
    logvar: Tensor
    bad: list[BadMolecule]
    encoder_mu: Tensor


def _device(model: SmilesVAE) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def encode(model: SmilesVAE, vocab: SmilesVocab, smiles: Sequence[str], *, canonical: bool = True,
           batch_size: int = 500, refine: RefineSettings | None = None) -> Encoded:
    """Encode SMILES (validated with RDKit when ``canonical``); bad inputs are reported, not raised.

    ``refine``: then refine each posterior by gradient ascent on its ELBO (:mod:`metashot.chem.refine`;
    beyond the paper: the encoder's guess decodes back to the input less often).
    """
    model.eval()
    good, ids, bad = vocab.prepare_many(smiles, canonical=canonical)
    mus, logvars = [], []
    for start in range(0, len(good), batch_size):
        mu, logvar = model.encode(ids[start : start + batch_size].to(_device(model)))
        mus.append(mu)
        logvars.append(logvar)
    dim = model.config.latent_dim
    empty = torch.zeros(0, dim, device=_device(model))
    guess = torch.cat(mus) if mus else empty
    mu, logvar = guess, (torch.cat(logvars) if logvars else empty)
    if refine is not None and refine.steps > 0 and len(good):
        refined = refine_in_batches(model, ids, mu, logvar, refine, batch_size=batch_size)
        mu, logvar = refined.mu, refined.logvar
    return Encoded(good, mu, logvar, bad, guess)


def encode_one(model: SmilesVAE, vocab: SmilesVocab, smiles: str, *, refine: RefineSettings | None = None
               ) -> tuple[str, Tensor]:
    """Canonical SMILES and ``mu`` ``(latent_dim,)`` of one molecule; raises InvalidSmilesError."""
    enc = encode(model, vocab, [smiles], refine=refine)
    if enc.bad:
        raise InvalidSmilesError(enc.bad[0].reason)
    return enc.smiles[0], enc.mu[0]


@torch.no_grad()
def decode(model: SmilesVAE, vocab: SmilesVocab, z: Tensor, *, temperature: float = 0.0,
           generator: torch.Generator | None = None, batch_size: int = 1000, constrained: bool = False,
           beam: int = 0, check_validity: bool = False) -> list[str]:
    """Decode ``z`` ``(n, latent_dim)`` into ``n`` strings (not necessarily valid molecules).

    ``constrained``: syntax-constrained decoding (:mod:`metashot.chem.grammar`: no unbalanced
    branches or ring bonds; valence and aromaticity can still fail). Off by default, as in the paper.
    ``beam``: if > 0, the most probable string found by a beam search of that width
    (:mod:`metashot.chem.beam`; ``temperature`` must be 0) instead of greedy decoding.
    ``check_validity`` (needs ``beam`` and RDKit): the most probable candidate of each beam that RDKit
    parses, canonical (the most probable one when none does).
    """
    if check_validity and beam < 1:
        raise UsageError("--check-validity picks from a beam: give --beam K (e.g. --beam 10)")
    if beam > 0:
        if temperature != 0:
            raise UsageError("beam search decodes the most probable strings: use it with temperature 0")
        beams = decode_beams(model, vocab, z, width=beam, constrained=constrained, batch_size=batch_size)
        if not check_validity:
            return [candidates[0][0] for candidates in beams]
        from metashot.chem.metrics import first_valid

        return [first_valid([s for s, _ in c]) or c[0][0] for c in beams]
    model.eval()
    if temperature < 0:
        raise UsageError(f"temperature must be >= 0, got {temperature}")
    syntax = vocab.syntax() if constrained else None
    out: list[str] = []
    for start in range(0, z.shape[0], batch_size):
        ids = model.generate(z[start : start + batch_size].to(_device(model)), temperature=temperature,
                             generator=generator, first_token_mask=vocab.first_token_mask(), syntax=syntax)
        out.extend(vocab.decode_batch(ids.cpu()))
    return out


def decoding_label(*, beam: int = 0, constrained: bool = False, check_validity: bool = False) -> str:
    """How :func:`decode` decodes with these options, as written into result protocols."""
    label = f"beam search, width {beam}" if beam > 0 else "greedy"
    if constrained:
        label += ", syntax-constrained"
    if check_validity and beam > 0:
        label += ", most probable valid candidate"
    return label


@torch.no_grad()
def decode_beams(model: SmilesVAE, vocab: SmilesVocab, z: Tensor, *, width: int, constrained: bool = False,
                 batch_size: int = 1000) -> list[list[tuple[str, float]]]:
    """The ``width`` most probable strings of each point of ``z`` ``(n, latent_dim)`` by beam search.

    Returns:
        ``n`` lists of ``(string, log_probability)`` (nats), best first; beams that could not be filled
        are left out. Strings are not necessarily valid molecules: pick the first valid one with
        :func:`metashot.chem.metrics.first_valid` to decode with a validity check.
    """
    model.eval()
    syntax = vocab.syntax() if constrained else None
    points = max(1, batch_size // width)  # about batch_size decoder rows at a time
    out: list[list[tuple[str, float]]] = []
    for start in range(0, z.shape[0], points):
        ids, logp = beam_search(model, z[start : start + points].to(_device(model)), width=width,
                                first_token_mask=vocab.first_token_mask(), syntax=syntax)
        strings = vocab.decode_batch(ids.reshape(-1, ids.shape[-1]).cpu())
        scores = logp.reshape(-1).tolist()
        for i in range(ids.shape[0]):
            row = range(i * width, (i + 1) * width)
            out.append([(strings[j], scores[j]) for j in row if scores[j] != float("-inf")])
    return out


def decode_many(model: SmilesVAE, vocab: SmilesVocab, z: Tensor, *, times: int = 100, temperature: float = 1.0,
                generator: torch.Generator | None = None) -> list[tuple[str, int]]:
    """Decode one or more points ``times`` times each; distinct valid molecules with their counts.

    Args:
        z: ``(latent_dim,)`` or ``(n, latent_dim)``.

    Returns:
        ``[(canonical_smiles, count), ...]`` most frequent first (the paper's figure 3 protocol).
    """
    from metashot.chem.metrics import canonical_or_none

    points = z.reshape(-1, z.shape[-1])
    repeated = points.repeat_interleave(times, dim=0)  # (n * times, latent_dim)
    strings = decode(model, vocab, repeated, temperature=temperature, generator=generator)
    counts = Counter(c for c in (canonical_or_none(s) for s in strings) if c is not None)
    return counts.most_common()


def sample_prior(n: int, latent_dim: int, generator: torch.Generator | None = None) -> Tensor:
    """``(n, latent_dim)`` draws from the prior N(0, I)."""
    return torch.randn(n, latent_dim, generator=generator)


def perturb(z: Tensor, radius: float, n: int, generator: torch.Generator | None = None) -> Tensor:
    """``(n, latent_dim)`` points at distance ``radius`` from ``z`` in random directions."""
    if radius < 0:
        raise UsageError(f"radius must be >= 0, got {radius}")
    noise = torch.randn(n, z.shape[-1], generator=generator).to(z.device, z.dtype)
    return Fn.perturb(z, radius, noise)


def interpolate(a: Tensor, b: Tensor, steps: int, method: str = "linear") -> Tensor:
    """``(steps, latent_dim)`` path from ``a`` to ``b``: ``linear`` or ``spherical`` (slerp)."""
    if steps < 2:
        raise UsageError(f"--steps must be >= 2, got {steps}")
    if method == "linear":
        return Fn.lerp(a, b, steps)
    if method == "spherical":
        return Fn.slerp(a, b, steps)
    raise UsageError(f"unknown interpolation {method!r}; choose linear or spherical")
