"""``metashot reproduce``: check every paper claim and write the report (issue 7).

    metashot reproduce [--quick] [--systems fewshot,optim,chem,rnn] [--train] --out DIR
                       [--data-dir D] [--device auto|cpu|cuda] [--seed N] [--checkpoints-dir C]

Writes ``DIR/index.html``, ``DIR/report.md`` and ``DIR/results.json`` (rewritten after each system,
so a partial report exists while it runs) and each system's figures under ``DIR/<system>/``.
Exit code: 0 if at least one system produced its report, 1 if none did, 2 for usage errors.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from metashot.cliutils import add_data_dir, add_device, add_seed
from metashot.reproduce.metadata import collect_metadata
from metashot.reproduce.render import claim_counts, write_report
from metashot.reproduce.runner import SYSTEM_NAMES, ReproduceOptions, exit_code, parse_systems, run_all

log = logging.getLogger(__name__)


def default_checkpoints_dir() -> Path:
    """``checkpoints/`` of the source checkout holding metashot, else ``./checkpoints``."""
    import metashot

    found = Path(metashot.__file__).resolve().parents[2] / "checkpoints"
    if not found.is_dir():
        return Path("checkpoints")
    try:  # relative to the working directory when possible: the report's commands stay short
        return found.relative_to(Path.cwd().resolve())
    except ValueError:
        return found


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``reproduce`` flags to ``parser`` (the command has no sub-commands)."""
    parser.add_argument("--out", required=True, type=Path, help="report folder (index.html, report.md, results.json)")
    parser.add_argument("--quick", action="store_true",
                        help="about 2 minutes per system on 2 CPU cores: fewer episodes, runs and molecules")
    parser.add_argument("--systems", default=None, metavar="LIST",
                        help=f"comma-separated systems to run (default: all = {','.join(SYSTEM_NAMES)})")
    parser.add_argument("--train", action="store_true",
                        help="retrain every system from scratch first instead of using the committed checkpoints")
    parser.add_argument("--checkpoints-dir", type=Path, default=None,
                        help="folder with the committed checkpoints (default: checkpoints/ of the source checkout)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar (log lines stay)")
    add_data_dir(parser)
    add_device(parser)
    add_seed(parser)
    parser.set_defaults(func=run)


def command_line(args: argparse.Namespace, systems: list[str]) -> list[str]:
    """The arguments of ``metashot`` that reproduce this report (shown in its metadata)."""
    argv = ["reproduce", "--out", str(args.out)]
    argv += ["--quick"] if args.quick else []
    argv += ["--train"] if args.train else []
    if systems != list(SYSTEM_NAMES):
        argv += ["--systems", ",".join(systems)]
    argv += ["--seed", str(args.seed)] + (["--device", args.device] if args.device != "auto" else [])
    argv += ["--data-dir", args.data_dir] if args.data_dir else []
    argv += ["--checkpoints-dir", str(args.checkpoints_dir)] if args.checkpoints_dir else []
    return argv


def run(args: argparse.Namespace) -> int:
    systems = parse_systems(args.systems)  # UsageError (exit 2) before anything runs
    options = ReproduceOptions(
        out_dir=args.out, systems=systems, quick=args.quick, train=args.train, data_dir=args.data_dir,
        device=args.device, seed=args.seed, checkpoints_dir=args.checkpoints_dir or default_checkpoints_dir(),
        progress=not args.no_progress,
    )
    os.environ.setdefault("MPLBACKEND", "Agg")  # systems draw figures; never open a window
    metadata = collect_metadata(device=args.device, seed=args.seed, quick=args.quick, train=args.train,
                                systems=systems, argv=command_line(args, systems))
    start = time.perf_counter()

    def update(outcomes):  # rewrite the report after each system: partial results survive a crash
        metadata["total_seconds"] = round(time.perf_counter() - start, 1)
        write_report(outcomes, metadata, options.out_dir)

    log.info("reproduce: %s -> %s%s", ",".join(systems), options.out_dir, " (quick)" if args.quick else "")
    outcomes = run_all(options, on_update=update)
    paths = write_report(outcomes, metadata, options.out_dir)
    for o in outcomes:
        n = claim_counts(o)
        detail = f"{n['met']} met, {n['not met']} not met, {n['info']} info" if o.status == "ok" else o.message
        print(f"{o.system:8s} {o.status:8s} {o.seconds:7.1f} s ({o.cpu_seconds:6.1f} s CPU)  {detail}")
    print(f"report: {paths['html']}  ({paths['markdown'].name}, {paths['json'].name})")
    sys.stdout.flush()
    return exit_code(outcomes)
