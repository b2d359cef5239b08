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

``--system optim`` runs ``benchmarks/optim_scaling.py``'s measurement (meta-training on quadratics,
global meta-batch of 2 optimizees: strong scaling). ``--system rnn`` and ``--system chem`` measure the Phased LSTM and chemical VAE trainers the same way,
with one difference: their ``--batch-size`` is the *global* batch (strong scaling: N processes share
each batch, ``batch / N`` rows each), so the rate is sequences (molecules) per second of the whole job.

- rnn: ``rnn train --model plstm --hidden-size 110 --batch-size 32`` (the paper's model and batch) on
  the asynchronous frequency task; the rate is the sequences of the epochs after the first divided by
  their wall time (from ``metrics.jsonl``, per-epoch evaluation of 16 test examples included).
- chem: ``chem train --preset reduced --batch-size 128`` (length buckets, trimmed decoding) on the
  first ZINC molecules; the rate is the trainer's ``molecules_per_second`` of steps 2..50.

    python benchmarks/scaling.py --system rnn [--steps 10] --out results/scaling_cpu_rnn.json
    METASHOT_DATA=../shared/data python benchmarks/scaling.py --system chem --out results/scaling_cpu_chem.json
    python benchmarks/scaling.py --system optim --steps 30 --out results/scaling_cpu_optim.json
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


def _launch(procs: int, cli: list[str]) -> subprocess.CompletedProcess:
    if procs == 1:
        cmd = [sys.executable, "-m", "metashot.cli", *cli]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(procs),
               "-m", "metashot.cli", *cli]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return done


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]


def _rnn_case(procs: int, args: argparse.Namespace, out: Path) -> dict:
    """Sequences per second over epochs 2..3 (each ``--steps`` steps of 32 sequences)."""
    batch = 32
    _launch(procs, ["rnn", "train", "--task", "frequency", "--sampling", "async", "--model", "plstm",
                    "--hidden-size", "110", "--batch-size", str(batch), "--epoch-size", str(batch * args.steps),
                    "--epochs", "3", "--eval-examples", "16", "--device", args.device, "--seed", "0",
                    "--no-progress", "--out", str(out)])
    epochs = {r["epoch"]: r for r in _records(out)}
    seconds = epochs[3]["elapsed_seconds"] - epochs[1]["elapsed_seconds"]
    return {"rate": 2 * args.steps * batch / seconds, "seconds": seconds, "global_batch": batch, "world_size": procs}


def _chem_case(procs: int, args: argparse.Namespace, out: Path) -> dict:
    """The trainer's molecules per second over steps 2..50 (batches of 128, reduced model)."""
    batch, steps = 128, 50
    options = out.parent / f"{out.name}-options.json"
    options.write_text(json.dumps({"eval_molecules": 16}))
    _launch(procs, ["chem", "train", "--preset", "reduced", "--config", str(options), "--batch-size", str(batch),
                    "--max-molecules", str(batch * steps), "--max-steps", str(steps), "--eval-every", "100000",
                    "--checkpoint-every", "100000", "--device", args.device, "--seed", "0", "--no-progress",
                    "--out", str(out)])
    record = next(r for r in _records(out) if r["step"] == steps and "molecules_per_second" in r)
    return {"rate": record["molecules_per_second"], "seconds": (steps - 1) * batch / record["molecules_per_second"],
            "global_batch": batch, "world_size": procs}


def _optim_case(procs: int, args: argparse.Namespace, out: Path) -> dict:
    """Optimizee-unrolls per second of ``optim meta-train`` (quadratics, global meta-batch 2; the
    measurement of ``benchmarks/optim_scaling.py``, which also runs the MNIST task)."""
    here = str(Path(__file__).parent)
    if here not in sys.path:
        sys.path.insert(0, here)
    from optim_scaling import _run

    opts = argparse.Namespace(meta_batch=2, steps=args.steps, warmup=3, data_dir=None, device=args.device, threads=1)
    row = _run("quadratic", procs, opts, out)
    return {"rate": row["optimizee_unrolls_per_s"], "seconds": row["timed_seconds"], "global_batch": 2,
            "world_size": procs}


def _fewshot_case(procs: int, args: argparse.Namespace, out: Path) -> dict:
    summary = _case(procs, args, out)
    return {"rate": summary["episodes_per_second"], "seconds": summary["seconds"],
            "global_batch": summary["global_episodes_per_step"], "world_size": summary["world_size"]}


SYSTEMS = {
    # name: (case, unit, benchmark description)
    "fewshot": (_fewshot_case, "episodes", "fewshot DDP scaling (matching, 5-way 1-shot 15-query Omniglot)"),
    "rnn": (_rnn_case, "sequences", "rnn DDP scaling (Phased LSTM, 110 units, async frequency task, global batch 32)"),
    "chem": (_chem_case, "molecules", "chem DDP scaling (SMILES VAE, reduced preset, ZINC, global batch 128)"),
    "optim": (_optim_case, "unrolls", "optim meta-training scaling (quadratics, meta-gradients all-reduced, "
              "global meta-batch 2)"),
}


def _case(procs: int, args: argparse.Namespace, out: Path) -> dict:
    train = ["fewshot", "train", "--method", "matching", "--dataset", "omniglot", "--way", "5", "--shot", "1",
             "--query", "15", "--episodes-per-step", str(args.episodes_per_step), "--steps", str(args.steps),
             "--log-every", str(args.steps), "--checkpoint-every", str(10 * args.steps), "--device", args.device,
             "--seed", "0", "--no-progress", "--json", "--out", str(out)]
    done = _launch(procs, train)
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
    p.add_argument("--system", choices=list(SYSTEMS), default="fewshot",
                   help="which trainer (rnn: --steps = steps per epoch, default 10; chem: 50 steps)")
    p.add_argument("--out", default=None, help="default results/scaling_cpu.json (fewshot), "
                   "results/scaling_cpu_SYSTEM.json (others)")
    args = p.parse_args(argv)
    if args.out is None:
        args.out = "results/scaling_cpu.json" if args.system == "fewshot" else f"results/scaling_cpu_{args.system}.json"
    if args.system == "rnn" and "--steps" not in (argv or sys.argv[1:]):
        args.steps = 10
    case, unit, description = SYSTEMS[args.system]
    runs: dict[int, list[dict]] = {n: [] for n in args.procs}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for n in args.procs:
                runs[n].append(case(n, args, Path(tmp) / f"run-{n}-{r}"))
    base = statistics.median(x["rate"] for x in runs[args.procs[0]])
    rows = []
    for n in args.procs:
        rate = statistics.median(x["rate"] for x in runs[n])
        rows.append({"processes": n, f"global_{unit}_per_step": runs[n][0]["global_batch"],
                     f"{unit}_per_second": round(rate, 2), "speedup": round(rate / base, 3),
                     "efficiency": round(rate / base / (n / args.procs[0]), 3),
                     "rounds": [round(x["rate"], 3) for x in runs[n]]})
    print(f"{'processes':>9}  {unit + '/step':>13}  {unit + '/s':>13}  {'speedup':>7}  {'efficiency':>10}")
    for row in rows:
        print(f"{row['processes']:>9}  {row[f'global_{unit}_per_step']:>13}  {row[f'{unit}_per_second']:>13.2f}  "
              f"{row['speedup']:>7.2f}  {row['efficiency']:>10.2f}")
    result = {
        "benchmark": description,
        "device": args.device,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "load_average_at_end": list(os.getloadavg()),
        "threads_per_process": 1,
        "steps": args.steps if args.system != "chem" else 50,
        **({"episodes_per_step_per_process": args.episodes_per_step} if args.system == "fewshot" else
           {"scaling": "strong: the global batch is fixed and split between the processes"}),
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
