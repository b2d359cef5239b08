"""Data-parallel scaling of few-shot training: episodes per second on 1 and N processes, side by side.

Each case is a real ``metashot fewshot train`` run (Matching Network, no FCE, 5-way 1-shot 15-query
Omniglot, ``--episodes-per-step`` episodes per process per step), launched as ``torchrun --standalone
--nproc-per-node N -m metashot.cli fewshot train ... --json`` (one process: plain ``python -m
metashot.cli``). The rate is the trainer's own ``episodes_per_second``: episodes of ALL ranks per
second of the training loop (data loading, process start and rendezvous excluded). Weak scaling: the
per-process batch stays fixed, so N processes take N times the episodes per optimizer step.

Every process gets one thread (``OMP_NUM_THREADS=1``), so on CPU ``N`` processes want ``N`` free
cores. Cases alternate (1, N, 1, N, ...) for ``--repeats`` rounds, so load from other jobs on a shared
machine hits both alike; the table reports the median of the rounds.

    METASHOT_DATA=../shared/data python benchmarks/scaling.py [--procs 1 2] [--steps 40] [--repeats 2]
        [--device cpu] [--out results/scaling_cpu.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch


def _case(procs: int, args: argparse.Namespace, out: Path) -> dict:
    train = ["fewshot", "train", "--method", "matching", "--dataset", "omniglot", "--way", "5", "--shot", "1",
             "--query", "15", "--episodes-per-step", str(args.episodes_per_step), "--steps", str(args.steps),
             "--log-every", str(args.steps), "--checkpoint-every", str(10 * args.steps), "--device", args.device,
             "--seed", "0", "--no-progress", "--json", "--out", str(out)]
    if procs == 1:
        cmd = [sys.executable, "-m", "metashot.cli", *train]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(procs),
               "-m", "metashot.cli", *train]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    return {"episodes_per_second": summary["episodes_per_second"], "seconds": summary["seconds"],
            "global_episodes_per_step": summary["global_episodes_per_step"], "world_size": summary["world_size"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--episodes-per-step", type=int, default=4)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default="results/scaling_cpu.json")
    args = p.parse_args(argv)
    runs: dict[int, list[dict]] = {n: [] for n in args.procs}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for n in args.procs:
                runs[n].append(_case(n, args, Path(tmp) / f"run-{n}-{r}"))
    base = statistics.median(x["episodes_per_second"] for x in runs[args.procs[0]])
    rows = []
    for n in args.procs:
        rate = statistics.median(x["episodes_per_second"] for x in runs[n])
        rows.append({"processes": n, "global_episodes_per_step": runs[n][0]["global_episodes_per_step"],
                     "episodes_per_second": round(rate, 2), "speedup": round(rate / base, 3),
                     "efficiency": round(rate / base / (n / args.procs[0]), 3),
                     "rounds": [x["episodes_per_second"] for x in runs[n]]})
    print(f"{'processes':>9}  {'episodes/step':>13}  {'episodes/s':>10}  {'speedup':>7}  {'efficiency':>10}")
    for row in rows:
        print(f"{row['processes']:>9}  {row['global_episodes_per_step']:>13}  {row['episodes_per_second']:>10.2f}  "
              f"{row['speedup']:>7.2f}  {row['efficiency']:>10.2f}")
    result = {
        "benchmark": "fewshot DDP scaling (matching, 5-way 1-shot 15-query Omniglot)",
        "device": args.device,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "load_average_at_end": list(os.getloadavg()),
        "threads_per_process": 1,
        "steps": args.steps,
        "episodes_per_step_per_process": args.episodes_per_step,
        "repeats": args.repeats,
        "command": "METASHOT_DATA=../shared/data python benchmarks/scaling.py " + " ".join(argv or sys.argv[1:]),
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
