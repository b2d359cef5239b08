"""The ``metashot`` command line: ``metashot <system> <command> [options]``.

Systems are registered in :data:`SYSTEMS` and imported lazily: ``metashot rnn ...`` never imports
RDKit. Each system's ``cli`` module defines ``register(parser)``, which adds that system's
sub-commands to ``parser``; every sub-command sets ``func(args) -> int | None`` as a default.

User mistakes print one line ``metashot: error: ...`` and exit 2 (usage) or 1 (runtime); never a
traceback. Set ``METASHOT_DEBUG=1`` to see the traceback anyway.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from metashot import __version__
from metashot.errors import MetashotError

# name -> (module defining register(parser), one-line help)
SYSTEMS: dict[str, tuple[str, str]] = {
    "data": ("metashot.data.cli", "list, download and verify datasets"),
    "fewshot": ("metashot.fewshot.cli", "Matching Networks and baselines for one-shot learning"),
    "optim": ("metashot.optim.cli", "learned (LSTM) optimizers: meta-train, compare"),
    "chem": ("metashot.chem.cli", "SMILES VAE: train, sample, interpolate, perturb, optimize"),
    "rnn": ("metashot.rnn.cli", "Phased LSTM: train and evaluate on the paper's tasks"),
    "reproduce": ("metashot.reproduce.cli", "check every paper claim and write the report"),
}


def list_systems() -> list[str]:
    """Names of the registered systems, in CLI order."""
    return list(SYSTEMS)


def _available(module: str) -> bool:
    # Look for the file without importing the system's package (its __init__ may import torch):
    # find_spec("metashot.fewshot.cli") would import metashot.fewshot first.
    package, _, name = module.rpartition(".")
    try:
        spec = importlib.util.find_spec(package)
    except ModuleNotFoundError:
        return False
    locations = (spec.submodule_search_locations or []) if spec is not None else []
    return any(Path(p, f"{name}.py").is_file() or Path(p, name, "__init__.py").is_file() for p in locations)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The full parser; with ``only``, import just that system's sub-commands (the rest stay stubs)."""
    parser = argparse.ArgumentParser(
        prog="metashot",
        description="Four NIPS 2016 ideas, reproduced and usable. `metashot SYSTEM --help` for details.",
    )
    parser.add_argument("--version", action="version", version=f"metashot {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages to stderr")
    sub = parser.add_subparsers(dest="system", metavar="SYSTEM")
    for name, (module, help_text) in SYSTEMS.items():
        if not _available(module):
            continue
        system_parser = sub.add_parser(name, help=help_text, description=help_text)
        if only is None or only == name:
            importlib.import_module(module).register(system_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``metashot`` script; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    system = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(only=system if system in SYSTEMS else None)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    func = getattr(args, "func", None)
    if func is None:
        # `metashot` or `metashot SYSTEM` with no command: show the relevant help.
        if args.system:
            parser.parse_args([args.system, "--help"])
        parser.print_help()
        return 2
    try:
        code = func(args)
    except MetashotError as exc:
        if os.environ.get("METASHOT_DEBUG"):
            raise
        print(f"metashot: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("metashot: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
