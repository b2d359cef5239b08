"""``metashot rnn train | evaluate | tasks``."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys

from metashot.cliutils import add_device, add_json, add_training, positive_int, print_json
from metashot.config import from_dict, load_json, to_dict
from metashot.rnn.config import PRESETS, ModelConfig, TaskConfig, TrainConfig
from metashot.rnn.evaluate import DEFAULT_TEST_EXAMPLES, evaluate_checkpoint
from metashot.rnn.sequence_models import list_models
from metashot.rnn.tasks import SAMPLINGS, list_tasks

log = logging.getLogger(__name__)


def register(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("train", help="train a Phased LSTM or a baseline on a synthetic task")
    p.add_argument("--preset", choices=list(PRESETS), default=None,
                   help="start from a named config (frequency-paper = the paper's 70 x 10,000 budget)")
    p.add_argument("--config", default=None, help="JSON file with a TrainConfig (overrides --preset)")
    p.add_argument("--task", choices=list_tasks(), default=None, help="frequency (default) or adding")
    p.add_argument("--sampling", choices=[*SAMPLINGS, "high-resolution"], default=None,
                   help="frequency task sampling: standard (1 ms), high_resolution (0.1 ms), async (default)")
    p.add_argument("--model", choices=list_models(), default=None, help="plstm (default), lstm or bnlstm")
    p.add_argument("--hidden-size", type=positive_int, default=None, help="hidden units (default 110)")
    p.add_argument("--num-layers", type=positive_int, default=None)
    p.add_argument("--period-init-range", type=float, nargs=2, metavar=("LOW", "HIGH"), default=None,
                   help="Phased LSTM: tau ~ log-uniform in [LOW, HIGH] (default e..e^3, the paper's frequency task)")
    p.add_argument("--r-on", type=float, default=None, help="Phased LSTM: initial open ratio (default 0.05)")
    p.add_argument("--fixed-r-on", dest="learn_r_on", action="store_const", const=False, default=None,
                   help="Phased LSTM: keep r_on at its initial value (fixes the open fraction; tau and s still learn)")
    p.add_argument("--leak", type=float, default=None, help="Phased LSTM: alpha while training (default 1e-3)")
    p.add_argument("--time-input-scale", type=float, default=None,
                   help="LSTM/BN-LSTM: feed times * SCALE as the extra input (default 1: raw ms, as the paper)")
    p.add_argument("--epochs", type=positive_int, default=None, help="epochs (default 70)")
    p.add_argument("--epoch-size", type=positive_int, default=None, help="examples per epoch (default 10000)")
    p.add_argument("--batch-size", type=positive_int, default=None, help="default 32")
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate (default 1e-3)")
    p.add_argument("--grad-clip", type=float, default=None, help="gradient-norm clipping (default off)")
    p.add_argument("--eval-examples", type=positive_int, default=None,
                   help="test examples evaluated after each epoch (default 1000)")
    p.add_argument("--min-length", type=positive_int, default=None, help="adding task: shortest sequence")
    p.add_argument("--max-length", type=positive_int, default=None, help="adding task: longest sequence")
    add_training(p)
    add_json(p)
    p.set_defaults(func=_train, seed=None)  # None: keep the preset's / config file's seed (default 0)

    p = sub.add_parser("evaluate", help="accuracy of a checkpoint on its task's fixed, seeded test set")
    p.add_argument("--checkpoint", required=True, help="run folder or checkpoint folder")
    p.add_argument("--examples", type=positive_int, default=DEFAULT_TEST_EXAMPLES,
                   help=f"test-set size (default {DEFAULT_TEST_EXAMPLES})")
    p.add_argument("--seed", type=int, default=0, help="test-set seed offset (default 0)")
    add_device(p)
    add_json(p)
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("tasks", help="list tasks, samplings, models and presets")
    add_json(p)
    p.set_defaults(func=_tasks)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """--preset, then --config, then individual flags, each overriding the previous."""
    base = to_dict(PRESETS[args.preset] if args.preset else TrainConfig())
    if args.config:
        loaded = load_json(args.config)
        for key, value in loaded.items():
            if isinstance(value, dict) and isinstance(base.get(key), dict):
                base[key].update(value)
            else:
                base[key] = value
    task_flags = {"name": args.task, "sampling": args.sampling, "min_length": args.min_length,
                  "max_length": args.max_length}
    model_flags = {"model": args.model, "hidden_size": args.hidden_size, "num_layers": args.num_layers,
                   "r_on": args.r_on, "learn_r_on": args.learn_r_on, "leak": args.leak, "time_input_scale": args.time_input_scale,
                   "period_init_range": None if args.period_init_range is None else list(args.period_init_range)}
    top_flags = {"epochs": args.epochs, "epoch_size": args.epoch_size, "batch_size": args.batch_size, "lr": args.lr,
                 "grad_clip": args.grad_clip, "eval_examples": args.eval_examples, "seed": args.seed}
    base["task"].update({k: v for k, v in task_flags.items() if v is not None})
    base["model"].update({k: v for k, v in model_flags.items() if v is not None})
    base.update({k: v for k, v in top_flags.items() if v is not None})
    return from_dict(TrainConfig, base)


def _train(args: argparse.Namespace) -> int:
    from metashot.rnn.train import train

    config = config_from_args(args)
    summary = train(config, args.out, resume=args.resume, max_steps=args.max_steps, max_minutes=args.max_minutes,
                    device=args.device, show_progress=not args.no_progress)
    from metashot.training.distributed import is_main_process

    if not is_main_process():  # under torchrun only rank 0 reports
        return 0
    if args.json:
        print_json(summary)
    else:
        acc = summary.get("test_accuracy")
        acc_text = "n/a" if acc is None else f"{acc:.4f}"
        print(f"step {summary['step']} (epoch {summary['epoch']}): test accuracy {acc_text}; "
              f"checkpoint in {args.out}", file=sys.stderr)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    result = evaluate_checkpoint(args.checkpoint, num_examples=args.examples, seed=args.seed, device=args.device)
    if args.json:
        print_json(result)
    else:
        for key, value in result.items():
            print(f"{key}: {value}")
    return 0


def _tasks(args: argparse.Namespace) -> int:
    info = {"tasks": list_tasks(), "samplings": list(SAMPLINGS), "models": list_models(),
            "presets": {k: to_dict(v) for k, v in PRESETS.items()},
            "task_fields": [f.name for f in dataclasses.fields(TaskConfig)],
            "model_fields": [f.name for f in dataclasses.fields(ModelConfig)]}
    if args.json:
        print_json(info)
    else:
        print("tasks:    " + ", ".join(info["tasks"]))
        print("samplings: " + ", ".join(info["samplings"]))
        print("models:   " + ", ".join(info["models"]))
        print("presets:  " + ", ".join(info["presets"]))
    return 0
