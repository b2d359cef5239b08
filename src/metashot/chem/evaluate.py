"""Evaluation and the latent-space commands behind ``metashot chem evaluate|sample|interpolate|perturb|optimize``.

Evaluation protocol (written into every result under ``"protocol"``):

- held-out molecules: the first ``molecules`` of the test split (the last 10% of the ZINC-250k
  file, never trained on);
- ``reconstruction``: greedy decoding of the posterior mean gives the input molecule (canonical SMILES
  equal); ``reconstruction_sampled``: the same for ``decodes`` posterior samples ``z ~ q(z|x)`` per
  molecule, greedy-decoded (the paper's encode-then-decode with its stochastic encoder);
- ``validity`` / ``uniqueness`` / ``novelty``: ``prior_samples`` points ``z ~ N(0, I)``, greedy
  decoding (paper: 5000 prior samples); novelty against the molecules the model was trained on;
- ``property_mae``: predictor (from the posterior mean) vs RDKit values in the data file;
- ``--refine-steps N``: the held-out posteriors are refined by N gradient steps on each molecule's ELBO
  before decoding (:mod:`metashot.chem.refine`; beyond the paper; recorded under ``"encoding"``);
  ``property_mae`` stays the encoder mean's;
- ``--beam K``: every greedy decoding above is a beam search of width K instead (the most probable
  string found), and ``with_validity_check`` adds the metrics of decoding each point to the most
  probable candidate of its beam that RDKit parses.

The decoding step needs no RDKit (:func:`generate_decodes`, runs on the GPU machine and can be saved
with ``--save-decodes``); the scoring step does (:func:`score_decodes`, ``--from-decodes``).
"""

from __future__ import annotations

import gzip
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import torch

from metashot.chem import latent
from metashot.chem.data import load_split
from metashot.chem.refine import RefineSettings, refine_in_batches
from metashot.chem.smiles import rdkit_available
from metashot.chem.train import load_model
from metashot.chem.vae import SmilesVAE
from metashot.config import save_json
from metashot.errors import DataError, UsageError
from metashot.training import resolve_device

__all__ = [
    "evaluate_checkpoint",
    "format_evaluation",
    "encodable_held_out",
    "generate_decodes",
    "refine_settings",
    "run_encode",
    "run_interpolate",
    "run_optimize",
    "run_perturb",
    "run_sample",
    "score_decodes",
]

PROPERTY_NAMES = ("logP", "QED", "SAS")


@torch.no_grad()
def generate_decodes(
    model: SmilesVAE, vocab: Any, test_smiles: list[str], test_properties: torch.Tensor | None, *,
    molecules: int, decodes: int, prior_samples: int, seed: int, constrained: bool = False, beam: int = 0,
    refine: RefineSettings | None = None,
) -> dict[str, Any]:
    """Decode held-out molecules and prior samples (no RDKit); JSON-ready.

    ``refine``: refine each held-out molecule's posterior by gradient ascent on its ELBO before decoding
    (:mod:`metashot.chem.refine`; beyond the paper, whose protocol decodes the encoder's guess); the
    prior samples are unaffected. The protocol then says so under ``"encoding"``.

    ``constrained``: syntax-constrained greedy decoding (:mod:`metashot.chem.grammar`) throughout.
    ``beam``: if > 0, beam search of that width instead of greedy decoding throughout (the most probable
    string of each point); the whole beams of the posterior means and the prior samples are kept too
    (``greedy_beams``, ``prior_beams``: best first) so that scoring can also decode with a validity check.
    """
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    started = time.perf_counter()
    inputs, ids, index = encodable_held_out(vocab, test_smiles, molecules)
    ids = ids.to(device)
    props = [test_properties[i] for i in index] if test_properties is not None else []
    mu_all, logvar_all = [], []
    for start in range(0, len(inputs), 500):
        mu, logvar = model.encode(ids[start : start + 500])
        mu_all.append(mu)
        logvar_all.append(logvar)
    mu = torch.cat(mu_all)
    logvar = torch.cat(logvar_all)
    encoder_mu, refined = mu, None
    if refine is not None and refine.steps > 0:
        refined = refine_in_batches(model, ids, mu, logvar, refine, progress=True)
        mu, logvar = refined.mu, refined.logvar
    greedy, greedy_beams = _decode_keeping_beams(model, vocab, mu, beam=beam, constrained=constrained)
    noise = torch.randn(decodes, *mu.shape, generator=gen).to(device)  # (decodes, n, latent_dim)
    z = (mu.unsqueeze(0) + torch.exp(0.5 * logvar).unsqueeze(0) * noise).reshape(-1, mu.shape[1])
    sampled = latent.decode(model, vocab, z, constrained=constrained, beam=beam)  # decode-major: [d * n + i]
    result: dict[str, Any] = {
        "inputs": inputs,
        "greedy": greedy,
        "sampled": [sampled[d * len(inputs) : (d + 1) * len(inputs)] for d in range(decodes)],
        "skipped_inputs": molecules - len(inputs) if len(inputs) < molecules else 0,
    }
    if props:
        target = torch.stack(props).to(device)
        def mae(point: torch.Tensor) -> dict[str, float]:
            return dict(zip(PROPERTY_NAMES, (model.predict_properties(point).float() - target).abs().mean(dim=0).tolist()))

        result["property_mae"] = mae(encoder_mu)  # the predictor was trained on the encoder's mean
        if refined is not None:
            result["property_mae_refined"] = mae(mu)
    prior_z = latent.sample_prior(prior_samples, model.config.latent_dim, gen).to(device)
    result["prior"], prior_beams = _decode_keeping_beams(model, vocab, prior_z, beam=beam, constrained=constrained)
    if beam > 0:
        result["greedy_beams"], result["prior_beams"] = greedy_beams, prior_beams
    result["protocol"] = {
        "held_out_molecules": len(inputs), "decodes_per_molecule": decodes, "prior_samples": prior_samples,
        "decoding": latent.decoding_label(beam=beam, constrained=constrained), "seed": seed,
        "held_out_split": "last 10% of the dataset file (test split)",
        "device": str(device), "decode_seconds": round(time.perf_counter() - started, 3),
        "decoded_molecules": len(inputs) * (1 + decodes) + prior_samples,
    }
    if refined is not None:
        result["protocol"]["encoding"] = refine.describe()
        result["protocol"]["elbo_loss_before_after"] = [round(float(refined.loss_before.mean()), 4),
                                                        round(float(refined.loss_after.mean()), 4)]
    return result


def encodable_held_out(vocab: Any, smiles: list[str], n: int, start: int = 0
                       ) -> tuple[list[str], torch.Tensor, list[int]]:
    """The first ``n`` of ``smiles[start:]`` that the vocabulary encodes as written (no RDKit; unknown tokens
    and too-long molecules are skipped): ``(inputs, (len, max_length) ids, their indices in smiles)``."""
    inputs, rows, index = [], [], []
    for i in range(start, len(smiles)):
        if len(inputs) == n:
            break
        try:
            rows.append(vocab.encode(smiles[i]))
        except Exception:  # unknown token / too long: skipped (evaluate reports how many short of n)
            continue
        inputs.append(smiles[i])
        index.append(i)
    return inputs, torch.tensor(rows, dtype=torch.long).reshape(len(rows), vocab.max_length), index


def refine_settings(cfg: Any, steps: int, lr: float, seed: int = 0) -> RefineSettings | None:
    """``--refine-steps/--refine-lr`` as :class:`RefineSettings` (KL weight: the model's final training
    weight ``cfg.kl_max``); None when ``steps`` is 0."""
    if steps < 0 or not lr > 0 or not math.isfinite(lr):
        raise UsageError(f"--refine-steps must be >= 0 and --refine-lr > 0 (got {steps}, {lr})")
    return RefineSettings(steps=steps, lr=lr, kl_weight=float(cfg.kl_max), seed=seed) if steps else None


def _decode_keeping_beams(model: SmilesVAE, vocab: Any, z: torch.Tensor, *, beam: int, constrained: bool
                          ) -> tuple[list[str], list[list[str]] | None]:
    """Greedy strings (``beam`` 0, beams None), or each beam's best string and the whole beams, best first."""
    if beam < 1:
        return latent.decode(model, vocab, z, constrained=constrained), None
    beams = [[s for s, _ in c] for c in latent.decode_beams(model, vocab, z, width=beam, constrained=constrained)]
    return [c[0] for c in beams], beams


def score_decodes(decodes: dict[str, Any], train_smiles: list[str] | None) -> dict[str, Any]:
    """Turn :func:`generate_decodes` output into the metrics (needs RDKit)."""
    from metashot.chem.metrics import canonical_or_none, evaluate_samples

    inputs = [canonical_or_none(s) for s in decodes["inputs"]]
    greedy = [canonical_or_none(s) for s in decodes["greedy"]]
    n = len(inputs)
    rec = sum(a is not None and a == b for a, b in zip(inputs, greedy)) / max(n, 1)
    total = hits = 0
    for row in decodes["sampled"]:
        for a, s in zip(inputs, row):
            total += 1
            hits += a is not None and a == canonical_or_none(s)
    prior = evaluate_samples(decodes["prior"], train=train_smiles)
    checked = _validity_checked(decodes, inputs, train_smiles) if "prior_beams" in decodes else None
    return {
        "reconstruction": rec,
        "reconstruction_sampled": hits / max(total, 1),
        "validity": prior["validity"],
        "uniqueness": prior["uniqueness"],
        "novelty": prior.get("novelty"),
        "property_mae": decodes.get("property_mae"),
        **({"property_mae_refined": decodes["property_mae_refined"]} if "property_mae_refined" in decodes else {}),
        "held_out_valid_decodings": sum(g is not None for g in greedy) / max(n, 1),
        **({"with_validity_check": checked} if checked is not None else {}),
        "protocol": decodes["protocol"],
    }


def _validity_checked(decodes: dict[str, Any], inputs: list[str | None], train_smiles: list[str] | None
                      ) -> dict[str, Any]:
    """Metrics when each point decodes to the most probable *valid* string of its beam (RDKit as the check)."""
    from metashot.chem.metrics import evaluate_samples, first_valid

    picked = [first_valid(c) for c in decodes["greedy_beams"]]
    rec = sum(a is not None and a == b for a, b in zip(inputs, picked)) / max(len(inputs), 1)
    prior = evaluate_samples([first_valid(c) or "" for c in decodes["prior_beams"]], train=train_smiles)
    return {"reconstruction": rec, "validity": prior["validity"], "uniqueness": prior["uniqueness"],
            "novelty": prior.get("novelty"),
            "decoding": "the most probable candidate of the beam that RDKit parses (none: invalid)"}


def _string_metrics(decodes: dict[str, Any]) -> dict[str, Any]:
    """What can be said without RDKit: exact-string reconstruction."""
    n = len(decodes["inputs"])
    exact = sum(a == b for a, b in zip(decodes["inputs"], decodes["greedy"])) / max(n, 1)
    return {
        "reconstruction": None, "reconstruction_string": exact, "validity": None, "uniqueness": None,
        "novelty": None, "property_mae": decodes.get("property_mae"), "protocol": decodes["protocol"],
        "note": "RDKit is not installed: validity/uniqueness/novelty need it; rerun with --from-decodes where it is",
    }


def evaluate_checkpoint(
    checkpoint: str | os.PathLike[str], *, molecules: int = 1000, decodes: int = 10, prior_samples: int = 5000,
    data_dir: str | None = None, device: str = "auto", seed: int = 0, save_decodes: str | None = None,
    from_decodes: str | None = None, constrained: bool = False, beam: int = 0, refine_steps: int = 0,
    refine_lr: float = 0.05,
) -> dict[str, Any]:
    """The ``metashot chem evaluate`` numbers for a checkpoint (see the module docstring)."""
    model, vocab, cfg = load_model(checkpoint, device)
    refine = refine_settings(cfg, refine_steps, refine_lr, seed)
    train, test = load_split(cfg.dataset, cfg.test_fraction, data_dir)
    train_smiles = train.smiles[: cfg.max_molecules] if cfg.max_molecules else train.smiles
    if from_decodes:
        dec = _read_decodes(from_decodes)
    else:
        props = torch.from_numpy(test.properties) if test.properties is not None else None
        dec = generate_decodes(model, vocab, test.smiles, props, molecules=molecules, decodes=decodes,
                               prior_samples=prior_samples, seed=seed, constrained=constrained, beam=beam,
                               refine=refine)
        if save_decodes:
            _write_decodes(save_decodes, dec)
    if not rdkit_available():
        result = _string_metrics(dec)
    else:
        result = score_decodes(dec, train_smiles)
    result["checkpoint"] = str(checkpoint)
    result["label"] = cfg.label
    return result


def _write_decodes(path: str, decodes: dict[str, Any]) -> None:
    """Save decodes as JSON, gzip-compressed when ``path`` ends in ``.gz`` (atomically either way)."""
    if not path.endswith(".gz"):
        save_json(path, decodes)
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    with gzip.open(tmp, "wt", encoding="utf-8") as fh:
        json.dump(decodes, fh, sort_keys=True)
    os.replace(tmp, target)


def _read_decodes(path: str) -> dict[str, Any]:
    """Decodes saved by :func:`_write_decodes` (``.json`` or ``.json.gz``); DataError if unreadable."""
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rt", encoding="utf-8") as fh:
                return json.load(fh)
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError) as exc:  # gz named .json: UnicodeDecodeError
        raise DataError(f"{path}: cannot read saved decodes ({exc}); decode again with --save-decodes") from None


def format_evaluation(result: dict[str, Any]) -> str:
    lines = []
    for key in ("reconstruction", "reconstruction_sampled", "validity", "uniqueness", "novelty"):
        value = result.get(key)
        lines.append(f"{key:24s} {'n/a' if value is None else f'{100 * value:.1f}%'}")
    for name, value in (result.get("property_mae") or {}).items():
        lines.append(f"property MAE {name:11s} {value:.3f}")
    checked = result.get("with_validity_check")
    if checked:
        for key in ("reconstruction", "validity", "uniqueness", "novelty"):
            value = checked.get(key)
            lines.append(f"{key + ' (valid beam)':24s} {'n/a' if value is None else f'{100 * value:.1f}%'}")
    lines.append(f"protocol: {json.dumps(result['protocol'])}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# the latent-space commands


def _valid_or_none(strings: list[str]) -> list[str | None]:
    from metashot.chem.metrics import canonical_or_none

    return [canonical_or_none(s) for s in strings]


def run_sample(checkpoint: str, *, n: int, temperature: float, device: str, seed: int, image: str | None,
               constrained: bool = False, beam: int = 0, check_validity: bool = False) -> dict[str, Any]:
    model, vocab, _ = load_model(checkpoint, device)
    gen = torch.Generator().manual_seed(seed)
    z = latent.sample_prior(n, model.config.latent_dim, gen).to(resolve_device(device))
    strings = latent.decode(model, vocab, z, temperature=temperature, generator=gen, constrained=constrained,
                            beam=beam, check_validity=check_validity)
    canon = _valid_or_none(strings)
    valid = [c for c in canon if c is not None]
    if image:
        from metashot.chem.draw import draw_grid

        draw_grid(valid[:24], image, legends=[f"#{i}" for i, c in enumerate(canon) if c is not None][:24], per_row=6)
    return {
        "smiles": strings, "valid": valid, "validity": len(valid) / max(n, 1),
        "uniqueness": len(set(valid)) / len(valid) if valid else None,
        "protocol": {"n": n, "seed": seed, "temperature": temperature, "constrained": constrained, "beam": beam,
                     "check_validity": check_validity}, "image": image,
    }


def run_interpolate(checkpoint: str, smiles_a: str, smiles_b: str, *, steps: int, method: str, device: str,
                    seed: int, image: str | None, beam: int = 0, check_validity: bool = False, refine_steps: int = 0,
                    refine_lr: float = 0.05) -> dict[str, Any]:
    model, vocab, cfg = load_model(checkpoint, device)
    refine = refine_settings(cfg, refine_steps, refine_lr, seed)
    a, za = latent.encode_one(model, vocab, smiles_a, refine=refine)
    b, zb = latent.encode_one(model, vocab, smiles_b, refine=refine)
    path = latent.interpolate(za, zb, steps, method)
    strings = latent.decode(model, vocab, path, beam=beam, check_validity=check_validity)
    canon = _valid_or_none(strings)
    ts = torch.linspace(0, 1, steps).tolist()
    rows = [{"t": t, "decoded": s, "smiles": c} for t, s, c in zip(ts, strings, canon)]
    if image:
        from metashot.chem.draw import draw_grid

        legends = [f"t={t:.2f}" + ("" if c else " (invalid)") for t, c in zip(ts, canon)]
        draw_grid([a, *canon, b], image, legends=["A (input)", *legends, "B (input)"], per_row=5)
    return {"a": a, "b": b, "method": method, "beam": beam, "check_validity": check_validity,
            "encoding": refine.describe() if refine else "encoder", "path": rows,
            "valid_fraction": sum(c is not None for c in canon) / steps, "image": image}


def run_perturb(checkpoint: str, smiles: str, *, radius: float, n: int, decodes: int, temperature: float,
                device: str, seed: int, image: str | None, refine_steps: int = 0, refine_lr: float = 0.05
                ) -> dict[str, Any]:
    model, vocab, cfg = load_model(checkpoint, device)
    refine = refine_settings(cfg, refine_steps, refine_lr, seed)
    canon, z = latent.encode_one(model, vocab, smiles, refine=refine)
    gen = torch.Generator().manual_seed(seed)
    points = latent.perturb(z, radius, n, gen)
    found = latent.decode_many(model, vocab, points, times=decodes, temperature=temperature, generator=gen)
    rows = [{"smiles": s, "count": c, "frequency": c / (n * decodes), "is_input": s == canon} for s, c in found]
    if image:
        from metashot.chem.draw import draw_grid

        shown = [canon] + [r["smiles"] for r in rows if not r["is_input"]][:15]
        legends = ["input"] + [f"{r['count']}x" for r in rows if not r["is_input"]][:15]
        draw_grid(shown, image, legends=legends)
    return {"input": canon, "encoding": refine.describe() if refine else "encoder", "radius": radius, "points": n,
            "decodes_per_point": decodes,
            "temperature": temperature, "molecules": rows, "image": image}


def run_optimize(checkpoint: str, *, objective: str, method: str, iterations: int, batch: int, initial: int,
                 top: int, data_dir: str | None, device: str, seed: int, image: str | None, beam: int = 0,
                 check_validity: bool = False, refine_steps: int = 0, refine_lr: float = 0.05) -> dict[str, Any]:
    from metashot.chem.optimize import optimize_property

    model, vocab, cfg = load_model(checkpoint, device)
    refine = refine_settings(cfg, refine_steps, refine_lr, seed)
    train, _ = load_split(cfg.dataset, cfg.test_fraction, data_dir)
    gen = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(train), generator=gen)[:initial].tolist()
    start = [train.smiles[i] for i in pick]
    result = optimize_property(model, vocab, start, objective=objective, method=method, iterations=iterations,
                               batch=batch, top=top, generator=gen, beam=beam, check_validity=check_validity,
                               refine=refine)
    if image and result.best:
        from metashot.chem.draw import draw_grid

        draw_grid([str(r["smiles"]) for r in result.best], image,
                  legends=[f"{float(r['score']):.2f}" for r in result.best], per_row=5)
    return {"objective": objective, "method": method, "best": result.best, "history": result.history,
            "initial_best": result.initial_best, "evaluated": result.evaluated, "valid": result.valid,
            "protocol": {**result.protocol, "seed": seed}, "image": image}


def run_encode(checkpoint: str, smiles: list[str], *, device: str, with_latent: bool = False, refine_steps: int = 0,
               refine_lr: float = 0.05, seed: int = 0) -> dict[str, Any]:
    """Encode molecules; predicted logP/QED/SAS per valid molecule; bad inputs listed, not fatal."""
    model, vocab, cfg = load_model(checkpoint, device)
    refine = refine_settings(cfg, refine_steps, refine_lr, seed)
    enc = latent.encode(model, vocab, smiles, refine=refine if with_latent else None)
    # properties from the encoder's mean, which the predictor was trained on (from refined points its
    # error doubles: results/chem/refine); only the reported latent is refined
    with torch.no_grad():
        pred = model.predict_properties(enc.encoder_mu).float().cpu() if len(enc.smiles) else torch.zeros(0, 3)
    rows = []
    for i, s in enumerate(enc.smiles):
        row: dict[str, Any] = {"smiles": s, "predicted": dict(zip(PROPERTY_NAMES, pred[i].tolist()))}
        if with_latent:
            row["mu"] = enc.mu[i].cpu().tolist()
        rows.append(row)
    return {"molecules": rows, "encoding": refine.describe() if refine else "encoder",
            "rejected": [{"index": b.index, "smiles": b.smiles, "reason": b.reason} for b in enc.bad]}
