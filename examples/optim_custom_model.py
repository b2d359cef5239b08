"""Use a meta-trained LSTM optimizer on your own model: a drop-in ``torch.optim.Optimizer``.

    .venv/bin/python examples/optim_custom_model.py                      # uses checkpoints/l2l-mnist-mlp
    .venv/bin/python examples/optim_custom_model.py --checkpoint RUN_DIR --steps 200
    .venv/bin/python examples/optim_custom_model.py --cheap               # 3 steps (the test runs this)

The model (a small MLP on a synthetic spiral classification problem) is outside the task families
the optimizer was trained on; Adam at a typical learning rate trains the same model from the same
initialisation on the same minibatches for comparison.
"""

from __future__ import annotations

import argparse
import copy
import math
from pathlib import Path

import torch
import torch.nn.functional as F

from metashot.optim import CoordinatewiseLSTM, LearnedOptimizer

DEFAULT_CHECKPOINT = Path(__file__).resolve().parent.parent / "checkpoints" / "l2l-mnist-mlp"


def spirals(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Two interleaved spirals: ``(n, 2)`` points and ``(n,)`` labels in {0, 1}."""
    labels = torch.randint(2, (n,), generator=generator)
    radius = torch.rand(n, generator=generator) * 3 + 0.2
    angle = radius * 2.5 + labels * math.pi
    points = torch.stack([radius * angle.cos(), radius * angle.sin()], dim=1)
    return points + 0.1 * torch.randn(n, 2, generator=generator), labels


def train(model: torch.nn.Module, optimizer: torch.optim.Optimizer, steps: int, seed: int) -> list[float]:
    generator = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(steps):
        x, y = spirals(128, generator)
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT), help="meta-train run folder")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--cheap", action="store_true", help="3 steps; an untrained LSTM if no checkpoint")
    args = parser.parse_args(argv)
    steps = 3 if args.cheap else args.steps
    if Path(args.checkpoint).exists():
        net = CoordinatewiseLSTM.from_pretrained(args.checkpoint)
    elif args.cheap:
        net = CoordinatewiseLSTM()
    else:
        parser.error(f"{args.checkpoint} not found; meta-train one with `metashot optim meta-train --task mnist-mlp --out DIR`")

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 32), torch.nn.Tanh(), torch.nn.Linear(32, 2))
    twin = copy.deepcopy(model)
    learned = train(model, LearnedOptimizer(model.parameters(), net=net), steps, seed=1)
    adam = train(twin, torch.optim.Adam(twin.parameters(), lr=1e-2), steps, seed=1)
    window = max(1, steps // 10)
    result = {"learned_final": sum(learned[-window:]) / window, "adam_final": sum(adam[-window:]) / window}
    print(f"after {steps} steps (mean of the last {window}): learned {result['learned_final']:.4f}, "
          f"Adam(1e-2) {result['adam_final']:.4f}")
    return result


if __name__ == "__main__":
    main()
