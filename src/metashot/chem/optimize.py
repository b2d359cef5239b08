"""Property optimisation in the latent space (Gómez-Bombarelli et al., section "Bayesian optimization
of drug-like molecules", figure 5): maximise an RDKit objective (default 5*QED - SAS) of decoded
molecules.

- ``bo``: Gaussian-process Bayesian optimisation with BoTorch (``SingleTaskGP`` + q-expected
  improvement) over a box spanned by encoded training molecules, as in the paper (which used a
  sparse GP on encoded ZINC molecules);
- ``bo-trust``: the same GP and acquisition confined to a trust region around the best point so far
  (TuRBO-1, Eriksson et al. 2019: a box whose sides follow the GP's length scales, doubled after 3
  improving batches in a row and halved after ceil(max(4, dim) / batch) failing ones). The paper's global
  box puts most proposals where the decoder makes no molecule; the trust region keeps them near
  molecules it can decode (beyond the paper);
- ``gradient``: gradient ascent on the jointly trained property predictor from the best encoded
  molecules, then decoding;
- ``random``: random search with prior samples, the paper's baseline.

Every candidate is decoded (greedily, or by beam search: ``beam``) and scored with RDKit; invalid decodings get the worst score
seen so far (they still inform the GP that the region is bad).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from metashot.chem.latent import decode, decoding_label, encode, sample_prior
from metashot.chem.metrics import canonical_or_none
from metashot.chem.properties import OBJECTIVE_WEIGHTS, OBJECTIVES, compute_properties
from metashot.chem.refine import RefineSettings
from metashot.chem.smiles import SmilesVocab
from metashot.chem.vae import SmilesVAE
from metashot.errors import UsageError

logger = logging.getLogger(__name__)

__all__ = ["METHODS", "OptimizationResult", "TrustRegion", "optimize_property", "trust_region_box"]

METHODS = ("bo", "bo-trust", "gradient", "random")


@dataclass
class OptimizationResult:
    """Best molecules found and the trajectory.

    Attributes:
        best: ``[{"smiles", "score", "logP", "QED", "SAS", "iteration"}]`` best first, distinct.
        history: best score so far after each iteration (index 0 = the initial set).
        evaluated: how many candidates were decoded; ``valid`` how many were molecules.
        initial_best: best score among the initial molecules (before optimising).
    """

    best: list[dict[str, float | str | int]]
    history: list[float]
    evaluated: int
    valid: int
    initial_best: float | None
    protocol: dict[str, object] = field(default_factory=dict)


class _Scorer:
    def __init__(self, objective: str) -> None:
        self.objective = objective
        self.seen: dict[str, dict[str, float | str | int]] = {}
        self.evaluated = 0
        self.valid = 0

    def __call__(self, strings: Sequence[str], iteration: int) -> list[float | None]:
        scores: list[float | None] = []
        for s in strings:
            self.evaluated += 1
            canon = canonical_or_none(s)
            props = compute_properties(canon) if canon else None
            if props is None or canon is None:
                scores.append(None)
                continue
            self.valid += 1
            score = OBJECTIVES[self.objective](props)
            if canon not in self.seen:
                self.seen[canon] = {"smiles": canon, "score": score, "logP": props["logP"], "QED": props["QED"],
                                    "SAS": props["SAS"], "iteration": iteration}
            scores.append(score)
        return scores

    def best(self, top: int, since_iteration: int = 1) -> list[dict[str, float | str | int]]:
        rows = [r for r in self.seen.values() if int(r["iteration"]) >= since_iteration] or list(self.seen.values())
        return sorted(rows, key=lambda r: -float(r["score"]))[:top]


@dataclass
class TrustRegion:
    """TuRBO-1's trust-region side length, in units of the search box (Eriksson et al. 2019, Alg. 1).

    ``update(improved)`` after each batch: ``success_tolerance`` improving batches in a row double the
    side (up to ``length_max``), ``failure_tolerance`` failing ones in a row halve it; below
    ``length_min`` the region restarts at ``length_init`` (counted in ``restarts``).
    """

    dim: int
    batch: int
    length_init: float = 0.8
    length_min: float = 0.5**7
    length_max: float = 1.6
    success_tolerance: int = 3
    failure_tolerance: int = 0  # 0: ceil(max(4 / batch, dim / batch)), as TuRBO
    length: float = 0.0
    successes: int = 0
    failures: int = 0
    restarts: int = 0

    def __post_init__(self) -> None:
        if not self.failure_tolerance:
            self.failure_tolerance = math.ceil(max(4 / self.batch, self.dim / self.batch))
        self.length = self.length or self.length_init

    def update(self, improved: bool) -> None:
        if improved:
            self.successes, self.failures = self.successes + 1, 0
        else:
            self.successes, self.failures = 0, self.failures + 1
        if self.successes >= self.success_tolerance:
            self.length, self.successes = min(2 * self.length, self.length_max), 0
        elif self.failures >= self.failure_tolerance:
            self.length, self.failures = self.length / 2, 0
        if self.length < self.length_min:
            self.length, self.restarts = self.length_init, self.restarts + 1


def trust_region_box(center: Tensor, lengthscales: Tensor, length: float) -> tuple[Tensor, Tensor]:
    """The trust region in unit-cube coordinates: ``(low, high)``, each ``(dim,)``, inside [0, 1].

    Side ``length * w_i`` around ``center (dim,)`` with ``w = lengthscales / geomean(lengthscales)``
    (long where the GP varies slowly), so the region's volume is ``length ** dim`` before clipping.
    """
    weights = lengthscales / lengthscales.log().mean().exp()
    half = weights * length / 2
    return (center - half).clamp(0.0, 1.0), (center + half).clamp(0.0, 1.0)


def _fill(scores: list[float | None], floor: float) -> Tensor:
    return torch.tensor([floor if s is None else s for s in scores], dtype=torch.float64)


def optimize_property(
    model: SmilesVAE,
    vocab: SmilesVocab,
    start_smiles: Sequence[str],
    *,
    objective: str = "qed-sas",
    method: str = "bo",
    iterations: int = 50,
    batch: int = 10,
    top: int = 10,
    generator: torch.Generator | None = None,
    gradient_lr: float = 0.05,
    gradient_steps: int = 20,
    beam: int = 0,
    check_validity: bool = False,
    refine: RefineSettings | None = None,
) -> OptimizationResult:
    """Maximise ``objective`` of decoded molecules, starting from ``start_smiles`` (encoded).

    Candidates are decoded greedily (the paper), or with ``beam`` > 0 by beam search, and with
    ``check_validity`` to the most probable valid string of each beam (:func:`metashot.chem.latent.decode`).
    ``refine``: refine the starting molecules' encodings (:mod:`metashot.chem.refine`), so that each
    starting point decodes to the molecule whose score it is given more often.
    """
    if objective not in OBJECTIVES:
        raise UsageError(f"unknown objective {objective!r}; choose one of {', '.join(OBJECTIVES)}")
    if method not in METHODS:
        raise UsageError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    enc = encode(model, vocab, start_smiles, refine=refine)
    if len(enc.smiles) < 2:
        raise UsageError("need at least 2 valid starting molecules to optimise")
    scorer = _Scorer(objective)
    z0 = enc.mu.detach().cpu().double()  # (n0, latent_dim)
    y0 = scorer(enc.smiles, iteration=0)
    floor = min(s for s in y0 if s is not None) if any(s is not None for s in y0) else -10.0
    history = [max(s for s in y0 if s is not None)]
    initial_best = history[0]
    Z, Y = z0, _fill(y0, floor)
    lower, upper = z0.min(dim=0).values, z0.max(dim=0).values
    latent_dim = z0.shape[1]
    region = TrustRegion(dim=latent_dim, batch=batch) if method == "bo-trust" else None
    lengths: list[float] = []
    for it in range(1, iterations + 1):
        if method == "random":
            cand = sample_prior(batch, latent_dim, generator).double()
        elif method == "gradient":
            cand = _gradient_candidates(model, Z, Y, batch, objective, gradient_lr, gradient_steps, it)
        else:
            cand = _bo_candidates(Z, Y, lower, upper, batch, generator, region)
        strings = decode(model, vocab, cand.float(), beam=beam, check_validity=check_validity)
        scores = scorer(strings, iteration=it)
        valid = [s for s in scores if s is not None]
        if valid:
            floor = min(floor, min(valid))
        Z = torch.cat([Z, cand])
        Y = torch.cat([Y, _fill(scores, floor)])
        if region is not None:
            lengths.append(region.length)
            region.update(bool(valid) and max(valid) > history[-1] + 1e-3 * abs(history[-1]))  # TuRBO's success test
        history.append(max(history[-1], max(valid)) if valid else history[-1])
        logger.info("iteration %d: best %.3f (%d/%d valid)", it, history[-1], len(valid), len(scores))
    protocol: dict[str, object] = {"objective": objective, "method": method, "iterations": iterations,
                                   "batch": batch, "initial": len(enc.smiles), "decoding": decoding_label(beam=beam, check_validity=check_validity),
                                   "encoding": refine.describe() if refine is not None else "encoder"}
    if region is not None:
        protocol["trust_region"] = {"length_per_iteration": lengths, "restarts": region.restarts,
                                    "failure_tolerance": region.failure_tolerance,
                                    "success_tolerance": region.success_tolerance}
    return OptimizationResult(
        best=scorer.best(top), history=history, evaluated=scorer.evaluated - len(y0),
        valid=scorer.valid - sum(s is not None for s in y0), initial_best=initial_best, protocol=protocol,
    )


def _bo_candidates(Z: Tensor, Y: Tensor, lower: Tensor, upper: Tensor, q: int, generator: torch.Generator | None,
                   region: TrustRegion | None = None) -> Tensor:
    """q new points from a GP (BoTorch) fitted to (Z, Y), by maximising qLogEI in the box [lower, upper],
    or, given ``region``, in its trust region around the best point of ``Z`` (inside that box)."""
    try:
        from botorch.acquisition.logei import qLogExpectedImprovement
        from botorch.fit import fit_gpytorch_mll
        from botorch.models import SingleTaskGP
        from botorch.models.transforms import Normalize, Standardize
        from botorch.optim import optimize_acqf
        from gpytorch.mlls import ExactMarginalLogLikelihood
    except ImportError:
        raise UsageError("--method bo needs BoTorch: pip install 'metashot[chem]'") from None
    import warnings

    bounds = torch.stack([lower, upper])
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    # GP fitting (restarts) and the acquisition's random starts draw from torch's global RNG: fork it and
    # seed it from ``generator`` so that a run is reproducible from its --seed and leaves the caller's RNG alone
    with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        warnings.simplefilter("ignore")
        gp = SingleTaskGP(Z, Y.unsqueeze(-1), input_transform=Normalize(Z.shape[1], bounds=bounds),
                          outcome_transform=Standardize(1))
        fit_gpytorch_mll(ExactMarginalLogLikelihood(gp.likelihood, gp))
        acq = qLogExpectedImprovement(gp, best_f=Y.max())
        if region is not None:
            span = (upper - lower).clamp_min(1e-12)
            center = ((Z[Y.argmax()] - lower) / span).clamp(0.0, 1.0)
            kernel = getattr(gp.covar_module, "base_kernel", gp.covar_module)  # ScaleKernel in older BoTorch
            lengthscales = kernel.lengthscale.detach().reshape(-1).double()  # unit-cube units (Normalize)
            low, high = trust_region_box(center, lengthscales, region.length)
            bounds = torch.stack([lower + span * low, lower + span * high])
        cand, _ = optimize_acqf(acq, bounds=bounds, q=q, num_restarts=4, raw_samples=256,
                                options={"maxiter": 50, "seed": seed})
    return cand.detach()


def _gradient_candidates(model: SmilesVAE, Z: Tensor, Y: Tensor, q: int, objective: str, lr: float, steps: int,
                         iteration: int) -> Tensor:
    """Gradient ascent on the property head's prediction of the objective, from the top-q points so far."""
    weights = torch.tensor(OBJECTIVE_WEIGHTS[objective], dtype=torch.float32)
    device = next(model.parameters()).device
    order = torch.argsort(Y, descending=True)
    # start from the best points so far, rotating through the top 3q so that iterations do not keep
    # re-decoding the same start
    top = order[: 3 * q]
    start = top.roll(-((iteration - 1) * q) % len(top))[:q]
    z = Z[start].float().to(device).clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)
    w = weights.to(device)
    for _ in range(steps):
        opt.zero_grad()
        value = (model.predict_properties(z) * w).sum(dim=-1)  # (q,)
        # stay near the prior's typical set: penalise leaving the N(0, I) shell
        prior = 0.5 * z.pow(2).sum(dim=-1) / z.shape[1]
        (-(value - prior)).sum().backward()
        opt.step()
    return z.detach().cpu().double()
