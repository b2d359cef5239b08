"""``metashot chem train|evaluate|sample|interpolate|perturb|optimize``."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from metashot.cliutils import (
    add_data_dir,
    add_device,
    add_json,
    add_seed,
    add_training,
    positive_int,
    print_json,
)

logger = logging.getLogger(__name__)


def register(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("train", help="train a SMILES VAE (resumable)")
    p.add_argument("--dataset", default="zinc250k", choices=["zinc250k", "moses"])
    p.add_argument("--preset", default="paper", help="paper (default), paper-fast, reduced or tiny")
    p.add_argument("--config", default=None, help="JSON config file (a TrainConfig or a run's config.json)")
    p.add_argument("--max-molecules", type=positive_int, default=None, help="train on the first N molecules only")
    p.add_argument("--tokenizer", choices=["char", "regex", "selfies"], default=None)
    p.add_argument("--batch-size", type=positive_int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--epochs", type=float, default=None)
    p.add_argument("--lr-decay-start", type=float, default=None,
                   help="epoch where a cosine decay of the learning rate starts (reaches lr * --lr-final at --epochs)")
    p.add_argument("--lr-final", type=float, default=None, help="final fraction of the learning rate (default 0.05)")
    p.add_argument("--lr-schedule", choices=["epoch", "budget"], default=None,
                   help="cosine decay over epochs (from --lr-decay-start to --epochs) or over the time budget "
                        "(from fraction --lr-decay-start of --max-minutes to its end)")
    p.add_argument("--kl-schedule", choices=["epoch", "budget"], default=None,
                   help="KL annealing over epochs (paper) or over the fraction of --max-minutes spent")
    p.add_argument("--kl-midpoint", type=float, default=None, help="epoch (or budget fraction) of half KL weight")
    p.add_argument("--kl-slope", type=float, default=None)
    p.add_argument("--kl-max", type=float, default=None)
    p.add_argument("--word-dropout", type=float, default=None,
                   help="probability of hiding each previous token from the decoder in training (default 0)")
    p.add_argument("--precision", choices=["bf16", "fp32"], default=None)
    p.add_argument("--eval-every", type=positive_int, default=None)
    p.add_argument("--checkpoint-every", type=positive_int, default=None)
    p.add_argument("--latent-dim", type=positive_int, default=None)
    p.add_argument("--gru-hidden", type=positive_int, default=None)
    p.add_argument("--gru-layers", type=positive_int, default=None)
    p.add_argument("--max-length", type=positive_int, default=None)
    p.add_argument("--encoder-norm", choices=["batch", "layer", "none"], default=None,
                   help="encoder normalisation: batch (paper) or layer (per molecule; no train/test gap with "
                        "length buckets)")
    p.add_argument("--label", default=None, help="label stored with the run (e.g. reduced)")
    p.add_argument("--train-only", choices=["all", "encoder"], default=None,
                   help="encoder: train only the encoder and property head, the decoder frozen (use with --init-from)")
    p.add_argument("--init-from", default=None, metavar="CHECKPOINT",
                   help="start from these weights (run or exported folder) with a fresh optimizer and schedule; "
                        "pass --config CHECKPOINT/config.json for matching sizes")
    add_training(p)
    p.add_argument("--json", action="store_true", help="print a JSON summary at the end")
    p.set_defaults(func=_train)

    p = sub.add_parser("evaluate", help="reconstruction, prior validity, uniqueness, novelty, property MAE")
    _add_checkpoint(p)
    p.add_argument("--molecules", type=positive_int, default=1000, help="held-out molecules (paper: 1000)")
    p.add_argument("--decodes", type=positive_int, default=10, help="sampled decodings per held-out molecule")
    p.add_argument("--prior-samples", type=positive_int, default=5000, help="prior samples (paper: 5000)")
    p.add_argument("--save-decodes", default=None, help="also write the decoded strings to this JSON file (gzip-compressed if it ends in .gz)")
    p.add_argument("--from-decodes", default=None, help="score decodes saved by --save-decodes (.json or .json.gz; no decoding)")
    _add_constrained(p)
    p.add_argument("--beam", type=positive_int, default=0, metavar="K",
                   help="beam search of width K instead of greedy decoding (the most probable strings); the "
                        "metrics of picking the most probable valid candidate of each beam are reported too")
    _add_refine(p)
    add_data_dir(p)
    add_device(p)
    add_seed(p)
    add_json(p)
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("sample", help="decode molecules sampled from the prior")
    _add_checkpoint(p)
    p.add_argument("-n", type=positive_int, default=100, help="number of prior samples")
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy decoding")
    _add_constrained(p)
    _add_beam(p)
    p.add_argument("--image", default=None, help="write a grid of the valid molecules (PNG)")
    add_device(p)
    add_seed(p)
    add_json(p)
    p.set_defaults(func=_sample)

    p = sub.add_parser("interpolate", help="decode points between two molecules")
    _add_checkpoint(p)
    p.add_argument("smiles_a", metavar="SMILES_A")
    p.add_argument("smiles_b", metavar="SMILES_B")
    p.add_argument("--steps", type=positive_int, default=8)
    p.add_argument("--method", choices=["linear", "spherical"], default="linear")
    _add_beam(p)
    _add_refine(p)
    p.add_argument("--image", default=None, help="write a grid of the decoded molecules (PNG)")
    add_device(p)
    add_seed(p)
    add_json(p)
    p.set_defaults(func=_interpolate)

    p = sub.add_parser("perturb", help="distinct valid neighbours of a molecule at a latent radius")
    _add_checkpoint(p)
    p.add_argument("smiles", metavar="SMILES")
    p.add_argument("--radius", type=float, default=1.0, help="latent distance of the neighbours")
    p.add_argument("-n", type=positive_int, default=20, help="number of latent points")
    p.add_argument("--decodes", type=positive_int, default=10, help="sampled decodings per point")
    p.add_argument("--temperature", type=float, default=1.0)
    _add_refine(p)
    p.add_argument("--image", default=None, help="write a grid of the neighbours (PNG)")
    add_device(p)
    add_seed(p)
    add_json(p)
    p.set_defaults(func=_perturb)

    p = sub.add_parser("encode", help="encode molecules and predict their properties (bad ones are reported)")
    _add_checkpoint(p)
    p.add_argument("smiles", metavar="SMILES", nargs="*", help="molecules (or --input FILE, one per line)")
    p.add_argument("--input", default=None, help="file with one SMILES per line")
    p.add_argument("--latent", action="store_true", help="include the latent means in the JSON output (refined with --refine-steps; the predicted properties always come from the encoder's mean)")
    _add_refine(p)
    add_device(p)
    add_json(p)
    p.set_defaults(func=_encode)

    p = sub.add_parser("optimize", help="maximise 5*QED - SAS (or logP, QED) in the latent space")
    _add_checkpoint(p)
    p.add_argument("--objective", choices=["qed-sas", "qed", "logp", "neg-sas"], default="qed-sas")
    p.add_argument("--method", choices=["bo", "bo-trust", "gradient", "random"], default="bo",
                   help="GP Bayesian optimization (BoTorch) over the data's box (paper) or in a TuRBO trust region, "
                        "gradient ascent on the property head, or random search")
    p.add_argument("--iterations", type=positive_int, default=50)
    p.add_argument("--batch", type=positive_int, default=10, help="candidates per iteration")
    p.add_argument("--initial", type=positive_int, default=100, help="initial encoded molecules (bo)")
    p.add_argument("--top", type=positive_int, default=10, help="best molecules to report")
    _add_beam(p)
    _add_refine(p)
    p.add_argument("--image", default=None, help="write a grid of the best molecules (PNG)")
    add_data_dir(p)
    add_device(p)
    add_seed(p)
    add_json(p)
    p.set_defaults(func=_optimize)


def _add_checkpoint(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="run folder or exported checkpoint folder")


def _add_beam(p: argparse.ArgumentParser) -> None:
    p.add_argument("--beam", type=positive_int, default=0, metavar="K",
                   help="decode each point by beam search of width K (its most probable string) instead of greedily")
    p.add_argument("--check-validity", action="store_true",
                   help="with --beam: the most probable candidate of each beam that RDKit parses")


def _add_refine(p: argparse.ArgumentParser) -> None:
    p.add_argument("--refine-steps", type=int, default=0, metavar="N",
                   help="refine each encoding by N Adam steps on the molecule's ELBO (semi-amortised inference, "
                        "beyond the paper; e.g. 30). 0: the encoder's guess, as in the paper")
    p.add_argument("--refine-lr", type=float, default=0.05, help="Adam step size of --refine-steps (default 0.05)")


def _add_constrained(p: argparse.ArgumentParser) -> None:
    p.add_argument("--constrained", action="store_true",
                   help="syntax-constrained decoding: mask tokens that would unbalance branches or ring bonds "
                        "(SMILES vocabularies; off by default, as in the paper)")


# ---------------------------------------------------------------------------------------------


def _train(args: argparse.Namespace) -> int:
    from metashot.chem.train import config_from_args, train

    overrides: dict[str, Any] = {
        "dataset": args.dataset if args.dataset != "zinc250k" or args.config is None else None,
        "max_molecules": args.max_molecules,
        "tokenizer": args.tokenizer,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "epochs": args.epochs,
        "lr_decay_start": args.lr_decay_start,
        "lr_final": args.lr_final,
        "lr_schedule": args.lr_schedule,
        "kl_schedule": args.kl_schedule,
        "kl_midpoint": args.kl_midpoint,
        "kl_slope": args.kl_slope,
        "kl_max": args.kl_max,
        "word_dropout": args.word_dropout,
        "train_only": args.train_only,
        "precision": args.precision,
        "eval_every": args.eval_every,
        "checkpoint_every": args.checkpoint_every,
        "label": args.label,
        "model.latent_dim": args.latent_dim,
        "model.gru_hidden": args.gru_hidden,
        "model.gru_layers": args.gru_layers,
        "model.max_length": args.max_length,
        "model.encoder_norm": args.encoder_norm,
    }
    config = config_from_args(args.preset, args.config, overrides)
    result = train(
        config, args.out, data_dir=args.data_dir, device=args.device, seed=args.seed, resume=args.resume,
        max_steps=args.max_steps, max_minutes=args.max_minutes, show_progress=not args.no_progress,
        init_from=args.init_from,
    )
    from metashot.training.distributed import is_main_process

    if not is_main_process():  # under torchrun only rank 0 reports
        return 0
    summary = {"run_dir": str(result.run_dir), "step": result.step, "epoch": result.epoch,
               "stopped_because": result.stopped_because, **result.last_metrics}
    if args.json:
        print_json(summary)
    else:
        print(f"trained {result.step} steps ({result.epoch:.2f} epochs, stopped: {result.stopped_because}) -> {result.run_dir}")
        for key in ("test_token_accuracy", "test_molecule_token_accuracy", "test_reconstruction_string"):
            if key in summary:
                print(f"  {key}: {summary[key]:.4f}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from metashot.chem.evaluate import evaluate_checkpoint, format_evaluation

    result = evaluate_checkpoint(
        args.checkpoint, molecules=args.molecules, decodes=args.decodes, prior_samples=args.prior_samples,
        data_dir=args.data_dir, device=args.device, seed=args.seed, save_decodes=args.save_decodes,
        from_decodes=args.from_decodes, constrained=args.constrained, beam=args.beam,
        refine_steps=args.refine_steps, refine_lr=args.refine_lr,
    )
    if args.json:
        print_json(result)
    else:
        print(format_evaluation(result))
    return 0


def _sample(args: argparse.Namespace) -> int:
    from metashot.chem.evaluate import run_sample

    result = run_sample(args.checkpoint, n=args.n, temperature=args.temperature, device=args.device, seed=args.seed,
                        image=args.image, constrained=args.constrained, beam=args.beam,
                        check_validity=args.check_validity)
    if args.json:
        print_json(result)
    else:
        for s in result["smiles"]:
            print(s)
        print(f"# valid {result['validity']:.3f}, unique {result['uniqueness']:.3f}", flush=True)
    return 0


def _interpolate(args: argparse.Namespace) -> int:
    from metashot.chem.evaluate import run_interpolate

    result = run_interpolate(args.checkpoint, args.smiles_a, args.smiles_b, steps=args.steps, method=args.method,
                             device=args.device, seed=args.seed, image=args.image, beam=args.beam,
                             check_validity=args.check_validity, refine_steps=args.refine_steps,
                             refine_lr=args.refine_lr)
    if args.json:
        print_json(result)
    else:
        for row in result["path"]:
            print(f"{row['t']:.3f}\t{row['smiles'] or '(invalid: ' + row['decoded'] + ')'}")
    return 0


def _perturb(args: argparse.Namespace) -> int:
    from metashot.chem.evaluate import run_perturb

    result = run_perturb(args.checkpoint, args.smiles, radius=args.radius, n=args.n, decodes=args.decodes,
                         temperature=args.temperature, device=args.device, seed=args.seed, image=args.image,
                         refine_steps=args.refine_steps, refine_lr=args.refine_lr)
    if args.json:
        print_json(result)
    else:
        print(f"# {result['input']} -> {len(result['molecules'])} distinct valid molecules at radius {args.radius}")
        for row in result["molecules"]:
            print(f"{row['count']}\t{row['smiles']}")
    return 0


def _optimize(args: argparse.Namespace) -> int:
    from metashot.chem.evaluate import run_optimize

    result = run_optimize(args.checkpoint, objective=args.objective, method=args.method, iterations=args.iterations,
                          batch=args.batch, initial=args.initial, top=args.top, data_dir=args.data_dir,
                          device=args.device, seed=args.seed, image=args.image, beam=args.beam,
                          check_validity=args.check_validity, refine_steps=args.refine_steps,
                          refine_lr=args.refine_lr)
    if args.json:
        print_json(result)
    else:
        print(f"# {args.method} on {args.objective}: best {result['best'][0]['score']:.3f}" if result["best"] else "# nothing valid")
        for row in result["best"]:
            print(f"{row['score']:.3f}\t{row['smiles']}")
    return 0


def _encode(args: argparse.Namespace) -> int:
    from metashot.chem.evaluate import run_encode
    from metashot.errors import UsageError

    smiles = list(args.smiles)
    if args.input:
        try:
            with open(args.input, encoding="utf-8") as fh:
                smiles += [line.strip().split()[0] if line.strip() else "" for line in fh]
        except OSError as exc:
            raise UsageError(f"--input {args.input}: {exc.strerror}") from None
    if not smiles:
        raise UsageError("give SMILES arguments or --input FILE")
    result = run_encode(args.checkpoint, smiles, device=args.device, with_latent=args.latent,
                        refine_steps=args.refine_steps, refine_lr=args.refine_lr)
    if args.json:
        print_json(result)
    else:
        for row in result["molecules"]:
            props = "  ".join(f"{k}={v:.3f}" for k, v in row["predicted"].items())
            print(f"{row['smiles']}\t{props}")
    for bad in result["rejected"]:
        print(f"metashot: skipped molecule {bad['index']} {bad['smiles']!r}: {bad['reason']}", file=sys.stderr)
    return 0
