"""``metashot optim ...``: meta-train a learned optimizer, compare it with tuned baselines."""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace
from pathlib import Path

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
from metashot.errors import UsageError
from metashot.optim.config import LOSS_WEIGHTINGS, OUTPUT_ACTIVATIONS, PREPROCESS_CHOICES, LSTMOptimizerConfig

logger = logging.getLogger(__name__)


def register(parser: argparse.ArgumentParser) -> None:
    from metashot.optim.tasks import list_tasks

    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("meta-train", help="meta-train the coordinate-wise LSTM optimizer on a task family")
    p.add_argument("--task", required=True, choices=list_tasks(), help="task family")
    add_training(p)
    p.add_argument("--epochs", type=positive_int, default=None, help="optimizees to train on (preset: 1000-2000)")
    p.add_argument("--horizon", type=positive_int, default=None, help="optimizee steps per epoch (100)")
    p.add_argument("--unroll", type=positive_int, default=None, help="truncated BPTT length (20)")
    p.add_argument("--meta-lr", type=float, default=None, help="Adam learning rate of the LSTM (1e-3)")
    p.add_argument("--second-order", action="store_true", default=None, help="keep second derivatives")
    p.add_argument("--grad-clip", type=float, default=None, help="clip the meta-gradient norm")
    p.add_argument("--loss-weighting", choices=LOSS_WEIGHTINGS, default=None,
                   help="w_t of the meta-loss: uniform (paper) or linear, 2(t+1)/(horizon+1) (rewards late progress)")
    p.add_argument("--fuse-parameters", action="store_true", default=None,
                   help="one LSTM call over all coordinates per step (faster on GPU)")
    p.add_argument("--eval-every", type=positive_int, default=None, help="epochs between validations")
    p.add_argument("--num-val", type=positive_int, default=None, help="validation optimizees")
    p.add_argument("--checkpoint-every", type=positive_int, default=None, help="epochs between checkpoints")
    p.add_argument("--hidden-size", type=positive_int, default=None, help="LSTM units per layer (20)")
    p.add_argument("--num-layers", type=positive_int, default=None, help="LSTM layers (2)")
    p.add_argument("--preprocess", choices=PREPROCESS_CHOICES, default=None,
                   help="gradient preprocessing: log-sign (paper), none, or adam (RNNprop's normalised moments)")
    p.add_argument("--moment-decay", type=float, default=None, help="beta of the adam preprocessing (0.95)")
    p.add_argument("--preprocess-p", type=float, default=None, help="p of the log-sign preprocessing (10)")
    p.add_argument("--output-scale", type=float, default=None, help="output scale of the update (0.1)")
    p.add_argument("--output-activation", choices=OUTPUT_ACTIVATIONS, default=None,
                   help="linear (paper) or tanh: update = scale * tanh(out), bounded steps (RNNprop)")
    p.add_argument("--meta-batch-size", type=positive_int, default=None,
                   help="quadratics bundled (summed) into each optimizee (quadratic only; default 128 there)")
    p.add_argument("--meta-batch", type=positive_int, default=None,
                   help="optimizees (own seeds) per meta-step, meta-gradient averaged; the global count, sharded "
                   "over torchrun processes (default 1; under torchrun: one per process)")
    p.add_argument("--init-from", default=None, metavar="DIR",
                   help="start from a meta-trained optimizer's weights (fine-tune, e.g. on another task)")
    p.add_argument("--separate-lstms", default=None, metavar="PATTERNS",
                   help="one LSTM per comma-separated parameter-name pattern, e.g. conv,fc (paper, Sec. 3.3; "
                   "a plain word is a prefix); default: one LSTM shared by all parameters")
    add_json(p)
    p.set_defaults(func=_meta_train)

    p = sub.add_parser("compare", help="score the learned optimizer and tuned baselines on held-out problems")
    p.add_argument("--checkpoint", default=None, help="meta-train run folder (uses its best/ model)")
    p.add_argument("--task", required=True, choices=list_tasks(), help="task family to test on")
    p.add_argument("--steps", type=positive_int, default=100, help="optimizee steps (100)")
    p.add_argument("--runs", type=positive_int, default=20, help="test problems (20)")
    p.add_argument("--tune-runs", type=positive_int, default=3, help="validation problems per learning rate (3)")
    p.add_argument("--optimizers", default="lstm,adam,rmsprop,nag,sgd", help="comma-separated subset")
    p.add_argument("--lr-grid", default=None, help="comma-separated learning rates (default 1e-4 .. 10, x sqrt(10))")
    p.add_argument("--plot", default=None, metavar="FILE.png", help="draw loss vs step with 95%% CI bands")
    p.add_argument("--out", default=None, metavar="FILE.json", help="also write the JSON result here")
    add_seed(p)
    add_device(p)
    add_data_dir(p)
    add_json(p)
    p.set_defaults(func=_compare)

    p = sub.add_parser("tasks", help="list the task families")
    p.set_defaults(func=_tasks)


# ---------------------------------------------------------------------------------------------------


def _meta_train(args: argparse.Namespace) -> int:
    from metashot.optim.config import preset_for, with_overrides
    from metashot.optim.train import meta_train
    from metashot.training import distributed, resolve_device

    # The network's flags (fields of LSTMOptimizerConfig): overrides of the preset, or checked against
    # the optimizer that --init-from loads.
    net_flags = {
        "hidden_size": args.hidden_size, "num_layers": args.num_layers, "preprocess": args.preprocess,
        "preprocess_p": args.preprocess_p, "moment_decay": args.moment_decay, "output_scale": args.output_scale,
        "output_activation": args.output_activation, "lstm_groups": _lstm_groups(args.separate_lstms),
    }
    config = with_overrides(
        preset_for(args.task),
        num_epochs=args.epochs,
        horizon=args.horizon,
        unroll=args.unroll,
        meta_lr=args.meta_lr,
        second_order=args.second_order,
        grad_clip=args.grad_clip,
        loss_weighting=args.loss_weighting,
        fuse_parameters=args.fuse_parameters,
        eval_every=args.eval_every,
        num_val=args.num_val,
        checkpoint_every=args.checkpoint_every,
        meta_batch=args.meta_batch,
        **net_flags,
    )
    if args.init_from is not None:  # the loaded weights fix the network: report and save its config
        config = replace(config, net=_check_init_from(args.init_from, net_flags))
    world = distributed.world_size()
    if args.meta_batch is None and world > 1:  # torchrun without --meta-batch: one optimizee per process
        config = with_overrides(config, meta_batch=world)
    device = str(resolve_device(args.device))
    result = meta_train(
        config,
        args.out,
        device=device,
        seed=args.seed,
        resume=args.resume,
        max_steps=args.max_steps,
        max_minutes=args.max_minutes,
        data_dir=args.data_dir,
        show_progress=not args.no_progress,
        meta_batch_size=args.meta_batch_size,
        init_from=args.init_from,
    )
    if not distributed.is_main_process():  # under torchrun only rank 0 reports
        return 0
    summary = {**result.__dict__, "config": to_dict(config)}
    if args.json:
        print_json(summary)
    else:
        print(
            f"meta-trained {config.task}: {result.step} unrolls, {result.epoch} epochs, best validation loss "
            f"{result.best_val_loss:.5g} at epoch {result.best_epoch}, {result.skipped_unrolls} skipped "
            f"({result.stopped_by}); optimizer in {Path(args.out) / 'best'}"
        )
    return 0


def _check_init_from(init_from: str, flags: dict[str, object]) -> LSTMOptimizerConfig:
    """The network config of the optimizer in ``init_from``, after checking that the network flags given
    with ``--init-from`` match it: its weights fix the architecture, so a differing flag would be ignored."""
    from metashot.optim.coordinatewise import CoordinatewiseLSTM

    loaded = CoordinatewiseLSTM.from_pretrained(init_from).config
    for name, value in flags.items():
        if value is not None and value != getattr(loaded, name):
            flag = "--separate-lstms" if name == "lstm_groups" else "--" + name.replace("_", "-")
            raise UsageError(
                f"{flag} {value} conflicts with --init-from {init_from}, whose optimizer has {name} = "
                f"{getattr(loaded, name)!r}: the loaded weights fix the architecture; drop {flag} or train from scratch"
            )
    return loaded


def _lstm_groups(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    groups = tuple(v.strip() for v in value.split(",") if v.strip())
    if len(groups) < 2:
        raise UsageError(f"--separate-lstms needs at least two comma-separated patterns (e.g. conv,fc), got {value!r}")
    return groups


def _compare(args: argparse.Namespace) -> int:
    from metashot.config import save_json
    from metashot.optim.coordinatewise import CoordinatewiseLSTM
    from metashot.optim.evaluate import LR_GRID, compare, list_optimizers
    from metashot.optim.tasks import make_task
    from metashot.training import resolve_device

    names = [n.strip() for n in args.optimizers.split(",") if n.strip()]
    unknown = [n for n in names if n not in list_optimizers()]
    if unknown or not names:
        raise UsageError(f"unknown optimizer(s) {unknown}; choose from {', '.join(list_optimizers())}")
    if "lstm" in names and args.checkpoint is None:
        raise UsageError("--checkpoint DIR is needed for the 'lstm' optimizer (or leave lstm out of --optimizers)")
    try:
        grid = tuple(float(v) for v in args.lr_grid.split(",")) if args.lr_grid else LR_GRID
    except ValueError:
        raise UsageError(f"--lr-grid: expected comma-separated numbers, got {args.lr_grid!r}") from None
    device = str(resolve_device(args.device))
    net = CoordinatewiseLSTM.from_pretrained(args.checkpoint) if "lstm" in names else None
    task = make_task(args.task, data_dir=args.data_dir)
    result = compare(
        task, net, steps=args.steps, runs=args.runs, seed=args.seed, device=device,
        optimizers=names, tune_runs=args.tune_runs, grid=grid,
    )
    result["checkpoint"] = args.checkpoint
    if args.out:
        save_json(args.out, result)
    if args.plot:
        from metashot.optim.plots import plot_comparison

        plot_comparison(result, args.plot)
    if args.json:
        print_json(result)
    else:
        print(f"{task.name}: {args.runs} runs x {args.steps} steps (seed {args.seed}); final loss, mean ± 95% CI")
        for name, entry in sorted(result["optimizers"].items(), key=lambda kv: kv[1]["final_loss"]):
            paired = ""
            if "lstm_minus" in entry:
                d = entry["lstm_minus"]
                paired = f"   LSTM lower on {entry['lstm_wins']}/{args.runs}, LSTM - this {d['mean']:+.4f} ± {d['ci95']:.4f}"
            print(f"  {name:8s} {entry['final_loss']:.5g} ± {entry['final_loss_ci95']:.2g}   (lr {entry['lr']:.3g}){paired}")
    return 0


def _tasks(args: argparse.Namespace) -> int:
    from metashot.optim.tasks import TASKS

    for name in TASKS:
        sys.stdout.write(name + "\n")
    return 0
