"""Re-run the commands a report names and check that they print the report's numbers.

    python -m metashot.reproduce.verify DIR [--systems rnn,fewshot] [--timeout 300]

For every claim in ``DIR/results.json`` whose command is a ``metashot ...`` (or ``python ...``)
command printing JSON (``--json``), run it and look for the claim's ``ours_value`` among the
numbers of the printed JSON object (exactly, up to float round-off 1e-12). Claims whose number is
derived (a difference of two runs, a count read from a log) cannot be found that way and are
listed as "not checkable", as are commands that print no JSON.

Exit code: 1 if a command failed, or with ``--strict`` if any claim's number was not found
(derived numbers, such as a margin between two models, are never printed as such: check those
by eye), else 0.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Verification:
    system: str
    claim: str
    command: str
    status: str  # "equal" | "not found" | "not checkable" | "error"
    detail: str = ""


def _numbers(value: Any, prefix: str = "") -> Iterator[tuple[str, float]]:
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        yield prefix or "value", float(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _numbers(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _numbers(item, f"{prefix}[{i}]")


def _argv(command: str) -> list[str] | None:
    """The command as argv for this Python, or None when it is not a metashot/python command."""
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    if not words:
        return None
    if words[0] == "metashot":
        return [sys.executable, "-m", "metashot.cli", *words[1:]]
    if words[0] in ("python", "python3"):
        return [sys.executable, *words[1:]]
    return None


def _last_json(stdout: str) -> Any:
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith(("{", "[")):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    try:
        return json.loads(stdout)
    except json.JSONDecodeError:
        return None


def verify_claim(system: str, claim: dict[str, Any], *, timeout: float = 300.0, cwd: Path | None = None) -> Verification:
    command, value = claim.get("command") or "", claim.get("ours_value")
    result = Verification(system, claim.get("claim", ""), command, "not checkable")
    argv = _argv(command)
    if value is None or argv is None:
        result.detail = "no number" if value is None else "not a metashot/python command"
        return result
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    except subprocess.TimeoutExpired:
        result.status, result.detail = "error", f"timed out after {timeout:.0f} s"
        return result
    if done.returncode != 0:
        result.status, result.detail = "error", f"exit {done.returncode}: {done.stderr.strip()[-300:]}"
        return result
    printed = _last_json(done.stdout)
    if printed is None:
        result.detail = "the command printed no JSON"
        return result
    leaves = list(_numbers(printed))
    hits = [key for key, number in leaves if math.isclose(number, value, rel_tol=0.0, abs_tol=1e-12)]
    if hits:
        result.status, result.detail = "equal", f"{hits[0]} = {value!r}"
    else:
        result.status = "not found"
        result.detail = f"{value!r} is not among the printed numbers ({', '.join(k for k, _ in leaves[:8])} ...)"
    return result


def verify_report(results_path: Path, systems: list[str] | None = None, *, timeout: float = 300.0,
                  cwd: Path | None = None) -> list[Verification]:
    document = json.loads(Path(results_path).read_text(encoding="utf-8"))
    out = []
    for system, entry in document["systems"].items():
        if systems and system not in systems:
            continue
        out += [verify_claim(system, claim, timeout=timeout, cwd=cwd) for claim in entry["claims"]]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m metashot.reproduce.verify", description=__doc__.split("\n")[0])
    parser.add_argument("report", type=Path, help="report folder (with results.json) or the results.json file")
    parser.add_argument("--systems", default=None, help="comma-separated systems to check (default: all)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per command")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a claim's number is not found")
    args = parser.parse_args(argv)
    path = args.report / "results.json" if args.report.is_dir() else args.report
    checks = verify_report(path, args.systems.split(",") if args.systems else None, timeout=args.timeout)
    for c in checks:
        print(f"{c.status:13s} {c.system:8s} {c.claim[:60]:60s} {c.detail}")
    counts = {s: sum(c.status == s for c in checks) for s in ("equal", "not found", "error", "not checkable")}
    print(", ".join(f"{n} {s}" for s, n in counts.items()))
    return 1 if counts["error"] or (args.strict and counts["not found"]) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
