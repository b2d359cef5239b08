"""Speed and memory of LearnedOptimizer.step() against torch.optim.Adam, side by side, as ratios.

    .venv/bin/python benchmarks/optim_speed.py                       # CPU, 10k / 100k / 1M parameters
    .venv/bin/python benchmarks/optim_speed.py --device cuda --json results/optim/speed-cuda.json
    .venv/bin/python benchmarks/optim_speed.py --compile             # LearnedOptimizer(compile=True)
    .venv/bin/python benchmarks/optim_speed.py --per-tensor          # one LSTM call per tensor (fused=False)
    .venv/bin/python benchmarks/optim_speed.py --preprocess adam --output-activation tanh   # RNNprop-style inputs

Per size and optimizer, a fresh subprocess builds a model of that many parameters (one square
``nn.Linear``), fills the gradients with noise and times ``step()`` only (median of ``--repeats``
after ``--warmup``). Time is CPU time of the process (``time.process_time``, one torch thread by
default) on CPU — robust on a shared machine — and wall time with synchronisation on CUDA. Peak
memory is the growth of the process's peak RSS over the steps (CPU; includes the optimizer state and
transient buffers) or ``torch.cuda.max_memory_allocated`` growth (CUDA). It also measures
meta-training speed: truncated unrolls (20 steps) per second on quadratics (128 bundled) and, when
the data is present, the MNIST MLP.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

SIZES = {"10k": 100, "100k": 316, "1M": 1000}  # Linear(n, n): n*n + n parameters
# Many tensors: "1M-200t" = 100 x Linear(100, 100) (1.01M parameters in 200 tensors), where the cost
# per tensor (kernel launches, Python) matters more than the cost per coordinate.
MANY = {"1M-200t": (100, 100)}


def _model(size: str):
    import torch

    if size in MANY:
        layers, width = MANY[size]
        return torch.nn.Sequential(*[torch.nn.Linear(width, width) for _ in range(layers)])
    return torch.nn.Linear(SIZES[size], SIZES[size])


def _measure(optimizer: str, size: str, device: str, repeats: int, warmup: int, chunk: int | None,
             fused: bool = True, compile: bool = False, net_options: dict | None = None) -> dict:
    import torch

    from metashot.optim import CoordinatewiseLSTM, LearnedOptimizer, LSTMOptimizerConfig

    torch.manual_seed(0)
    model = _model(size).to(device)
    params = list(model.parameters())
    for p in params:
        p.grad = torch.randn_like(p)
    if optimizer == "adam":
        opt = torch.optim.Adam(params, lr=1e-3)
    else:
        net = CoordinatewiseLSTM(LSTMOptimizerConfig(chunk_size=chunk, **(net_options or {}))).to(device)
        opt = LearnedOptimizer(params, net=net, fused=fused, compile=compile)
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base_mem = torch.cuda.memory_allocated()
    else:
        base_mem = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    times = []
    for i in range(warmup + repeats):
        if cuda:
            torch.cuda.synchronize()
            start = time.perf_counter()
            opt.step()
            torch.cuda.synchronize()
            elapsed = time.perf_counter() - start
        else:
            start = time.process_time()
            opt.step()
            elapsed = time.process_time() - start
        if i >= warmup:
            times.append(elapsed)
    if cuda:
        peak = torch.cuda.max_memory_allocated() - base_mem
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base_mem
    return {"params": sum(p.numel() for p in params), "step_s": statistics.median(times), "peak_bytes": max(peak, 0)}


def _meta_speed(task: str, device: str, unrolls: int, net_options: dict | None = None) -> dict:
    import torch

    from metashot.optim import CoordinatewiseLSTM, LSTMOptimizerConfig, init_state, make_task, unroll

    net = CoordinatewiseLSTM(LSTMOptimizerConfig(**(net_options or {}))).to(device)
    options = {"num_problems": 128} if task == "quadratic" else {}
    problem = make_task(task, **options).sample(0, device=device)
    state = init_state(net, problem.init(), fused=device.startswith("cuda"))
    meta_opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(unrolls):
        meta_opt.zero_grad()
        loss, _, state = unroll(net, problem, state.detached(), 20)
        loss.backward()
        meta_opt.step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return {"task": task, "unrolls_per_s_wall": unrolls / wall, "unrolls_per_s_cpu": unrolls / cpu}


def _child(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    net_options = {"preprocess": args.preprocess, "output_activation": args.output_activation}
    if args.child == "meta":
        result = _meta_speed(args.task, args.device, args.unrolls, net_options)
    else:
        result = _measure(args.child, args.size, args.device, args.repeats, args.warmup, args.chunk_size,
                          fused=not args.per_tensor, compile=args.compile, net_options=net_options)
    print(json.dumps(result))


def _run_child(extra: list[str], common: list[str]) -> dict | None:
    proc = subprocess.run([sys.executable, __file__, *common, *extra], capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"  failed: {' '.join(extra)}: {proc.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per measurement (default 1)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--chunk-size", type=int, default=4096, help="LearnedOptimizer coordinates per block")
    parser.add_argument("--sizes", default="10k,100k,1M,1M-200t")
    parser.add_argument("--per-tensor", action="store_true",
                        help="LearnedOptimizer(fused=False): one LSTM call per tensor (the layout before fusing)")
    parser.add_argument("--compile", action="store_true",
                        help="LearnedOptimizer(compile=True): torch.compile the per-block LSTM math (the warm-up "
                             "steps include the compilation; only the timed steps count)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="alternate Adam / LSTM measurements this many times per size (median ratio)")
    parser.add_argument("--unrolls", type=int, default=3, help="unrolls timed for meta-training speed (0: skip)")
    parser.add_argument("--preprocess", default="log-sign", choices=("log-sign", "none", "adam"),
                        help="the LSTM's inputs (adam: RNNprop's normalised moments, with a (3, n) moment state)")
    parser.add_argument("--output-activation", default="linear", choices=("linear", "tanh"))
    parser.add_argument("--json", default=None, help="write the results here")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--size", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--task", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    common = ["--device", args.device, "--threads", str(args.threads), "--repeats", str(args.repeats),
              "--warmup", str(args.warmup), "--chunk-size", str(args.chunk_size), "--unrolls", str(args.unrolls),
              "--preprocess", args.preprocess, "--output-activation", args.output_activation]
    if args.per_tensor:
        common.append("--per-tensor")
    if args.compile:
        common.append("--compile")
    rows = []
    print(f"{'params':>8} | {'Adam step':>11} | {'LSTM step':>11} | {'time ratio':>10} | "
          f"{'Adam peak':>10} | {'LSTM peak':>10} | {'mem ratio':>9}")
    for size in args.sizes.split(","):
        # Rounds alternate Adam and LSTM processes, so slow drifts in the machine's load hit both;
        # the row reports the medians, and the ratio is the median of the per-round ratios.
        pairs = []
        for _ in range(args.rounds):
            adam = _run_child(["--child", "adam", "--size", size], common)
            lstm = _run_child(["--child", "lstm", "--size", size], common)
            if adam is not None and lstm is not None:
                pairs.append((adam, lstm))
        if not pairs:
            continue
        ratios = [lstm["step_s"] / max(adam["step_s"], 1e-9) for adam, lstm in pairs]
        adam_peak = statistics.median(a["peak_bytes"] for a, _ in pairs)
        lstm_peak = statistics.median(m["peak_bytes"] for _, m in pairs)
        row = {
            "size": size, "params": pairs[0][0]["params"], "rounds": len(pairs),
            "adam_step_s": statistics.median(a["step_s"] for a, _ in pairs),
            "lstm_step_s": statistics.median(m["step_s"] for _, m in pairs),
            "time_ratio": statistics.median(ratios), "time_ratios": ratios,
            "adam_peak_bytes": adam_peak, "lstm_peak_bytes": lstm_peak,
            "memory_ratio": lstm_peak / max(adam_peak, 1),
        }
        rows.append(row)
        print(f"{row['params']:>8} | {row['adam_step_s'] * 1e3:>8.2f} ms | {row['lstm_step_s'] * 1e3:>8.1f} ms | "
              f"{row['time_ratio']:>9.0f}x | {row['adam_peak_bytes'] / 2**20:>7.1f} MB | "
              f"{row['lstm_peak_bytes'] / 2**20:>7.1f} MB | {row['memory_ratio']:>8.1f}x")
    meta = []
    for task in ("quadratic", "mnist-mlp") if args.unrolls > 0 else ():
        result = _run_child(["--child", "meta", "--task", task], common)
        if result is not None:
            meta.append(result)
            print(f"meta-training {task}: {result['unrolls_per_s_wall']:.2f} unrolls/s wall, "
                  f"{result['unrolls_per_s_cpu']:.2f} unrolls/s of CPU time (20 steps each)")
    report = {
        "device": args.device, "threads": args.threads, "chunk_size": args.chunk_size,
        "fused": not args.per_tensor, "compile": args.compile, "rounds": args.rounds,
        "preprocess": args.preprocess, "output_activation": args.output_activation,
        "time_measure": "process CPU time (cpu) / synchronised wall time (cuda), median per step()",
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count()},
        "step": rows, "meta_training": meta,
    }
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
