"""``metashot fewshot train | evaluate | predict``: the only place that parses few-shot arguments."""

from __future__ import annotations

import argparse
import logging
from dataclasses import replace

from metashot.cliutils import (
    add_data_dir,
    add_device,
    add_json,
    add_seed,
    add_training,
    positive_int,
    print_json,
)
from metashot.config import to_dict
from metashot.fewshot.config import (
    DATASETS,
    METHODS,
    SPLITS,
    EpisodeConfig,
    TrainConfig,
    get_preset,
    list_presets,
)

log = logging.getLogger(__name__)


def register(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    # --- train ---
    p = sub.add_parser(
        "train",
        help="train Matching Networks, Prototypical Networks or the baseline classifier on Omniglot",
        description="Episodic training on the training characters only. Resumable (--resume); "
        "checkpoints, config.json and metrics.jsonl go to --out.",
    )
    p.add_argument("--method", choices=METHODS, default=None, help="model to train (default: matching)")
    p.add_argument("--fce", action="store_true", default=None, help="Matching Networks: full context embeddings")
    p.add_argument("--preset", choices=list_presets(), default=None, help="start from a named preset")
    p.add_argument("--dataset", choices=DATASETS, default="omniglot", help="dataset (default: omniglot)")
    p.add_argument(
        "--split", choices=SPLITS, default=None,
        help="vinyals (1200 training characters, rotations; default) or background (Lake's background/evaluation)",
    )
    p.add_argument("--train-part", choices=("train", "trainval", "background"), default=None,
                   help="vinyals split: trainval (default, the paper's 1200 characters) or train (1028)")
    p.add_argument("--way", type=positive_int, default=None, help="classes per training episode (default 5)")
    p.add_argument("--shot", type=positive_int, default=None, help="support images per class (default 1)")
    p.add_argument("--query", type=positive_int, default=None, help="query images per class (default 15)")
    p.add_argument("--steps", type=positive_int, default=None, help="optimizer steps (default 20000)")
    p.add_argument("--episodes-per-step", type=positive_int, default=None, help="episodes batched per step (default 1)")
    p.add_argument("--batch-size", type=positive_int, default=None, help="baseline: images per step (default 256)")
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate (default 1e-3)")
    p.add_argument("--lr-decay", type=float, default=None, help="learning-rate factor (default 0.5) ...")
    p.add_argument("--lr-decay-every", type=positive_int, default=None, help="... every N steps (default 5000)")
    p.add_argument("--read-steps", type=positive_int, default=None, help="FCE: attention-LSTM steps K (default 5)")
    p.add_argument("--scale", type=float, default=None, help="cosine multiplier (default 10; 1 = the paper)")
    p.add_argument("--log-every", type=positive_int, default=None, help="steps between metrics lines (default 100)")
    p.add_argument("--checkpoint-every", type=positive_int, default=None, help="steps between checkpoints (default 2000)")
    add_training(p)
    add_json(p)
    p.set_defaults(func=_train)

    # --- evaluate ---
    p = sub.add_parser(
        "evaluate",
        help="accuracy and 95%% CI on fixed seeded test episodes",
        description="Scores a checkpoint (or --method pixels, no checkpoint) on the same test episodes "
        "for every method: they depend only on the test classes, --way/--shot/--query, --episodes and --seed.",
    )
    p.add_argument("--checkpoint", default=None, help="run folder or checkpoint folder")
    p.add_argument("--method", choices=("pixels", *METHODS), default=None,
                   help="pixels: cosine nearest neighbour on raw pixels (no checkpoint)")
    p.add_argument("--way", type=positive_int, required=True, help="classes per test episode")
    p.add_argument("--shot", type=positive_int, required=True, help="support images per class")
    p.add_argument("--query", type=positive_int, default=15, help="query images per class (default 15)")
    p.add_argument("--episodes", type=positive_int, default=1000, help="test episodes (default 1000)")
    p.add_argument("--split", choices=SPLITS, default=None, help="default: the checkpoint's split (pixels: vinyals)")
    add_seed(p)
    add_device(p)
    add_data_dir(p)
    add_json(p)
    p.set_defaults(func=_evaluate)

    # --- predict ---
    p = sub.add_parser(
        "predict",
        help="classify your own images against a support folder",
        description="--support FOLDER holds one sub-folder per class of image files (PNG/JPEG, any size, "
        "grey or colour); every image file in --query is classified.",
    )
    p.add_argument("--checkpoint", required=True, help="run folder or checkpoint folder")
    p.add_argument("--support", required=True, help="folder with one sub-folder of images per class")
    p.add_argument("--query", required=True, help="folder of images to classify")
    add_device(p)
    add_json(p)
    p.set_defaults(func=_predict)


# --- handlers ---------------------------------------------------------------------------------------


def _train_config(args: argparse.Namespace) -> TrainConfig:
    config = get_preset(args.preset) if args.preset else TrainConfig()
    model = config.model
    model_changes = {"method": args.method, "full_context": args.fce, "read_steps": args.read_steps, "scale": args.scale}
    model = replace(model, **{k: v for k, v in model_changes.items() if v is not None})
    episodes = config.episodes
    episodes = EpisodeConfig(
        n_way=args.way or episodes.n_way, n_shot=args.shot or episodes.n_shot, n_query=args.query or episodes.n_query
    )
    split = args.split or config.split
    train_part = args.train_part or ("background" if split == "background" else config.train_part)
    changes = {
        "dataset": args.dataset,
        "split": split,
        "train_part": train_part,
        "steps": args.steps,
        "episodes_per_step": args.episodes_per_step,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "lr_decay": args.lr_decay,
        "lr_decay_every": args.lr_decay_every,
        "log_every": args.log_every,
        "checkpoint_every": args.checkpoint_every,
        "seed": args.seed,
    }
    return replace(config, model=model, episodes=episodes, **{k: v for k, v in changes.items() if v is not None})


def _train(args: argparse.Namespace) -> int:
    from metashot.fewshot.train import train

    config = _train_config(args)
    result = train(
        config,
        out=args.out,
        resume=args.resume,
        max_steps=args.max_steps,
        max_minutes=args.max_minutes,
        device=args.device,
        show_progress=not args.no_progress,
        data_dir=args.data_dir,
    )
    from metashot.training.distributed import is_main_process

    if not is_main_process():  # under torchrun only rank 0 reports
        return 0
    summary = {
        "out": str(result.out),
        "step": result.step,
        "loss": result.loss,
        "train_accuracy": result.accuracy,
        "seconds": round(result.seconds, 2),
        "episodes_per_second": round(result.episodes_per_second, 2),
        "stopped_early": result.stopped_early,
        "world_size": result.world_size,
        "global_episodes_per_step": result.global_episodes_per_step,
        "config": to_dict(config),
    }
    if args.json:
        print_json(summary)
    else:
        print(
            f"trained {config.model.method} to step {result.step} in {result.seconds:.0f}s "
            f"({result.episodes_per_second:.1f} episodes/s); last loss {result.loss:.4f}, "
            f"train accuracy {result.accuracy:.3f}; checkpoint in {result.out}"
        )
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from metashot.fewshot.evaluate import evaluate_setting

    result = evaluate_setting(
        checkpoint=args.checkpoint,
        method=args.method,
        way=args.way,
        shot=args.shot,
        query=args.query,
        episodes=args.episodes,
        seed=args.seed,
        split=args.split,
        device=args.device,
        data_dir=args.data_dir,
    )
    if args.json:
        print_json(result)
    else:
        print(
            f"{result['method']}{' (FCE)' if result['fce'] else ''} {args.way}-way {args.shot}-shot on "
            f"omniglot {result['split']}/{result['test_part']}: {100 * result['accuracy']:.2f}% "
            f"± {100 * result['ci95']:.2f}% (95% CI, {args.episodes} episodes, seed {args.seed})"
        )
    return 0


def _predict(args: argparse.Namespace) -> int:
    from metashot.fewshot.evaluate import load_model
    from metashot.fewshot.predict import predict_folders
    from metashot.training import resolve_device

    device = resolve_device(args.device)
    model, config = load_model(args.checkpoint, device)
    predictions = predict_folders(model, args.support, args.query, device)
    if args.json:
        print_json(
            {
                "checkpoint": args.checkpoint,
                "method": config.model.method,
                "predictions": [
                    {"file": p.file, "class": p.predicted, "probability": p.probability, "probabilities": p.probabilities}
                    for p in predictions
                ],
            }
        )
    else:
        for p in predictions:
            print(f"{p.file}\t{p.predicted}\t{p.probability:.3f}")
    return 0
