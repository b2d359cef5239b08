"""Forward + backward time per batch: PhasedLSTM vs nn.LSTM, same sizes, side by side.

    python benchmarks/plstm_speed.py                      # lengths 100 and 1000, CPU (and CUDA if present)
    python benchmarks/plstm_speed.py --quick --json-out /tmp/speed.json

Prints a table and writes JSON (default ``results/rnn/plstm_speed.json``): median milliseconds per
batch for ``nn.LSTM`` (cuDNN on GPU), ``PhasedLSTM`` with each recurrence backend, and the ratio
PhasedLSTM / nn.LSTM. The Phased LSTM time loop runs in Python/TorchScript, so the gap to a fused
cuDNN kernel grows on GPU; on CPU the two are within a small factor.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

from metashot.rnn import PhasedLSTM


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_fb(module: nn.Module, x: torch.Tensor, times: torch.Tensor | None, repeats: int, warmup: int) -> float:
    """Median seconds of one forward + backward on (x, times)."""
    samples = []
    for i in range(warmup + repeats):
        _sync(x.device)
        start = time.perf_counter()
        out, _ = module(x) if times is None else module(x, times)
        out.sum().backward()
        _sync(x.device)
        if i >= warmup:
            samples.append(time.perf_counter() - start)
        module.zero_grad(set_to_none=True)
    return statistics.median(samples)


def run(device: torch.device, lengths: list[int], batch: int, hidden: int, repeats: int, warmup: int,
        backends: list[str], jit_max_length: int, on_row=None) -> list[dict]:
    rows = []
    for steps in lengths:
        torch.manual_seed(0)
        x = torch.randn(batch, steps, 1, device=device)
        times = torch.arange(steps, dtype=torch.float32, device=device).expand(batch, steps)
        lstm = nn.LSTM(1, hidden, batch_first=True).to(device)
        row = {"device": device.type, "length": steps, "batch": batch, "hidden": hidden,
               "lstm_ms": 1e3 * time_fb(lstm, x, None, repeats, warmup)}
        for backend in backends:
            if backend in ("script", "compile") and steps > jit_max_length:
                # TorchScript's profiling runs and torch.compile's tracing unroll the time loop: at
                # T = 1000 a single warm-up takes minutes on CPU, so we only time them on short sequences.
                row[f"plstm_{backend}_ms"] = None
                row[f"plstm_{backend}_error"] = f"skipped: T > --jit-max-length {jit_max_length}"
                continue
            plstm = PhasedLSTM(1, hidden, batch_first=True, backend=backend).to(device)
            try:
                row[f"plstm_{backend}_ms"] = 1e3 * time_fb(plstm, x, times, repeats, warmup)
            except Exception as exc:  # noqa: BLE001 - e.g. torch.compile without a compiler
                row[f"plstm_{backend}_ms"] = None
                row[f"plstm_{backend}_error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
                continue
            row[f"ratio_{backend}"] = row[f"plstm_{backend}_ms"] / row["lstm_ms"]
        rows.append(row)
        if on_row is not None:
            on_row(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=110)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    parser.add_argument("--backends", nargs="+", default=["eager", "script"], help="also: compile")
    parser.add_argument("--jit-max-length", type=int, default=200, help="time script/compile only up to this T")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    parser.add_argument("--quick", action="store_true", help="lengths 20 and 50, 1 repeat (smoke test)")
    parser.add_argument("--json-out", default="results/rnn/plstm_speed.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.lengths, args.repeats, args.warmup, args.hidden = [20, 50], 1, 1, 16
    torch.set_num_threads(args.threads)
    devices = []
    if args.device in ("cpu", "all"):
        devices.append(torch.device("cpu"))
    if args.device in ("cuda", "all") and torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    out = Path(args.json_out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "what": "median forward+backward time per batch (ms), PhasedLSTM vs nn.LSTM, same sizes",
        "command": "python " + " ".join(["benchmarks/plstm_speed.py", *(argv if argv is not None else sys.argv[1:])]),
        "torch": torch.__version__, "python": platform.python_version(), "machine": platform.machine(),
        "cpu_threads": args.threads,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "rows": [],
    }

    def on_row(row: dict) -> None:  # write as we go, so a timeout still leaves the rows measured so far
        result["rows"].append(row)
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(row), file=sys.stderr, flush=True)

    rows = [r for d in devices for r in run(d, args.lengths, args.batch, args.hidden, args.repeats, args.warmup,
                                             args.backends, args.jit_max_length, on_row)]
    header = f"{'device':6} {'T':>5} {'nn.LSTM ms':>11}" + "".join(f" {'PLSTM ' + b + ' ms':>18} {'ratio':>6}" for b in args.backends)
    print(header)
    for r in rows:
        line = f"{r['device']:6} {r['length']:>5} {r['lstm_ms']:>11.2f}"
        for b in args.backends:
            ms, ratio = r.get(f"plstm_{b}_ms"), r.get(f"ratio_{b}")
            note = "skipped" if str(r.get(f"plstm_{b}_error", "")).startswith("skipped") else "failed"
            line += f" {ms:>18.2f} {ratio:>6.2f}" if ms is not None else f" {note:>18} {'-':>6}"
        print(line)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
