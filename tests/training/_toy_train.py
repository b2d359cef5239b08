"""A tiny generic trainer built only on metashot.training, for the kill-and-resume test.

    python tests/training/_toy_train.py --out RUN --steps 30 [--resume] [--sleep 0.1] [--every 3]

Every random source is used each step (torch global RNG via dropout and noise, a named
torch.Generator for the data, NumPy and Python's random), so exact resume needs all of them.
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np
import torch
from torch import nn

from metashot.training import (
    MetricsLogger,
    capture_rng_state,
    check_finite,
    has_checkpoint,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
    seed_everything,
)
from metashot.training.checkpoint import load_optimizer_tensors, optimizer_tensors


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--every", type=int, default=3, help="checkpoint every N steps")
    parser.add_argument("--sleep", type=float, default=0.0, help="seconds to sleep per step")
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    generator = seed_everything(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    config = {"layers": [8, 16, 1], "lr": 1e-2, "steps": args.steps}
    metrics = MetricsLogger(f"{args.out}/metrics.jsonl")
    start = 0
    if args.resume and has_checkpoint(args.out):
        checkpoint = load_checkpoint(args.out)
        model.load_state_dict(checkpoint.group("model"))
        optimizer.load_state_dict(load_optimizer_tensors(checkpoint.group("optimizer")))
        restore_rng_state(checkpoint.group("rng"), {"data": generator})
        start = checkpoint.step
        metrics.truncate_after(start)

    for step in range(start, args.steps):
        x = torch.randn(32, 8, generator=generator)  # (batch, features)
        y = x.sum(dim=1, keepdim=True) + 0.1 * torch.randn(32, 1)
        y = y + float(np.random.normal(0.0, 0.01)) + random.uniform(-0.01, 0.01)
        model.train()
        loss = nn.functional.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        check_finite(step, {"loss": loss})
        metrics.log(step + 1, loss=loss)
        if (step + 1) % args.every == 0 or step + 1 == args.steps:
            save_checkpoint(
                args.out,
                config=config,
                tensors={
                    "model": model.state_dict(),
                    "optimizer": optimizer_tensors(optimizer.state_dict()),
                    "rng": capture_rng_state({"data": generator}),
                },
                state={"step": step + 1},
            )
        time.sleep(args.sleep)


if __name__ == "__main__":
    main()
