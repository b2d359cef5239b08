"""Time the learned optimizer's LSTM math on one block of coordinates, and the whole deployed step.

Separates the two costs of ``CoordinatewiseLSTM.update_``: the per-block math (:func:`update_block`)
and writing each block's state back into the big state. Runs against whichever metashot is on the path,
so two versions can be compared side by side (alternate the two commands)::

    python benchmarks/optim_block.py --json new.json
    PYTHONPATH=<other checkout>/src python benchmarks/optim_block.py --json old.json

CPU process time, one thread; the minimum over ``--repeats`` timings of ``--inner`` calls each.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

import metashot
from metashot.optim.coordinatewise import CoordinatewiseLSTM
from metashot.optim.functional import update_block


def _min_ms(fn, repeats: int, inner: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        for _ in range(inner):
            fn()
        best = min(best, (time.process_time() - start) / inner)
    return best * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--block", type=int, default=4096, help="coordinates per block (the CPU default)")
    parser.add_argument("--coordinates", type=int, default=1 << 20, help="coordinates of the whole step")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = CoordinatewiseLSTM()
    cfg = net.config
    grad = torch.randn(args.coordinates) * 1e-3
    h, c = net.initial_state(args.coordinates)
    hb, cb = net.initial_state(args.block)
    gb = grad[: args.block].clone()
    gates = net._deployment_gates()
    kwargs = {"preprocess": cfg.preprocess, "p": cfg.preprocess_p, "output_scale": cfg.output_scale}
    with torch.no_grad():
        block_ms = _min_ms(lambda: update_block(gb, hb, cb, gates, net.out_weight, net.out_bias, **kwargs),
                           args.repeats, 50)
        step_ms = _min_ms(lambda: net.update_(grad, h, c), args.repeats, 2)
    result = {
        "metashot": metashot.__version__, "state_shape": list(h.shape), "block": args.block,
        "coordinates": args.coordinates, "block_ms": block_ms, "step_ms": step_ms,
        "time_measure": "process CPU time, one thread, minimum over repeats",
    }
    print(f"metashot {result['metashot']} (state {tuple(h.shape)})")
    print(f"{'block':>12} | {'block math':>11} | {'coordinates':>11} | {'update_':>10}")
    print(f"{args.block:>12} | {block_ms:8.3f} ms | {args.coordinates:>11} | {step_ms:7.1f} ms")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
