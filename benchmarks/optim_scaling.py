"""Meta-training throughput of ``metashot optim meta-train`` on 1 and 2 processes (torchrun), as a ratio.

    METASHOT_DATA=../shared/data .venv/bin/python benchmarks/optim_scaling.py \\
        --tasks quadratic,mnist-mlp --steps 30 --repeats 2 --json results/optim/scaling-cpu.json

Strong scaling: both runs use the same global ``--meta-batch`` (2 optimizees per meta-step by default),
so they compute the same meta-gradients (bit-identical on CPU); 1 process runs both optimizees in
turn, 2 processes one each, then all-reduce. Each run is a real ``meta-train`` job (one torch thread
per process, ``OMP_NUM_THREADS=1``), 1 and 2 processes alternating for ``--repeats`` rounds; the
rate is the trainer's own: optimizee-unrolls (20 optimizee steps of one optimizee each) per second
from the ``metrics.jsonl`` timestamps of steps ``--warmup``..``--steps`` (start-up, the first steps,
validation and checkpoints excluded). The median over rounds is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _run(task: str, nproc: int, args: argparse.Namespace, out: Path) -> dict:
    cli = ["optim", "meta-train", "--task", task, "--meta-batch", str(args.meta_batch), "--out", str(out),
           "--max-steps", str(args.steps), "--epochs", "100000", "--eval-every", "100000",
           "--checkpoint-every", "100000", "--num-val", "1", "--no-progress", "--device", args.device]
    if args.data_dir:
        cli += ["--data-dir", args.data_dir]
    if nproc == 1:
        cmd = [sys.executable, "-m", "metashot.cli", *cli]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc),
               "-m", "metashot.cli", *cli]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    steps = [r for r in records if "meta_loss" in r and r["step"] >= args.warmup]
    seconds = steps[-1]["time"] - steps[0]["time"]
    unrolls = (steps[-1]["step"] - steps[0]["step"]) * args.meta_batch
    return {"processes": nproc, "optimizee_unrolls_per_s": unrolls / seconds, "timed_steps": len(steps) - 1,
            "timed_seconds": round(seconds, 3), "job_seconds": round(time.perf_counter() - start, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", default="quadratic", help="comma-separated task families")
    parser.add_argument("--steps", type=int, default=30, help="meta-steps (truncated unrolls) per run")
    parser.add_argument("--warmup", type=int, default=3, help="time from this step on")
    parser.add_argument("--meta-batch", type=int, default=2, help="global optimizees per meta-step")
    parser.add_argument("--repeats", type=int, default=2, help="rounds of (1 process, 2 processes)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args()
    report: dict = {
        "command": "python " + " ".join(sys.argv),
        "measure": "optimizee-unrolls (20 optimizee steps each) per second over all processes, from the trainer's "
                   f"metrics.jsonl timestamps of steps {args.warmup}..{args.steps}; median over rounds",
        "meta_batch": args.meta_batch, "threads_per_process": args.threads, "device": args.device,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "load_before": os.getloadavg()},
        "tasks": {},
    }
    root = Path(tempfile.mkdtemp(prefix="optim-scaling-"))
    try:
        for task in args.tasks.split(","):
            rounds: dict[int, list[dict]] = {1: [], 2: []}
            for r in range(args.repeats):
                for nproc in (1, 2):
                    result = _run(task, nproc, args, root / f"{task}-{nproc}-{r}")
                    rounds[nproc].append(result)
                    print(f"{task} round {r}: {nproc} process(es): {result['optimizee_unrolls_per_s']:.2f} unrolls/s",
                          file=sys.stderr)
            one = statistics.median(x["optimizee_unrolls_per_s"] for x in rounds[1])
            two = statistics.median(x["optimizee_unrolls_per_s"] for x in rounds[2])
            report["tasks"][task] = {"rounds": rounds, "unrolls_per_s": {"1": one, "2": two}, "speedup": two / one,
                                     "efficiency": two / one / 2}
        report["machine"]["load_after"] = os.getloadavg()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"{'task':>10} | {'1 process':>12} | {'2 processes':>12} | {'speedup':>7} | {'efficiency':>10}")
    for task, row in report["tasks"].items():
        print(f"{task:>10} | {row['unrolls_per_s']['1']:>8.2f} u/s | {row['unrolls_per_s']['2']:>8.2f} u/s | "
              f"{row['speedup']:>6.2f}x | {row['efficiency']:>10.2f}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
