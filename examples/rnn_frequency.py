"""Phased LSTM as a drop-in layer: classify asynchronously sampled sine waves by frequency.

    python examples/rnn_frequency.py            # ~2,000 steps, a few CPU minutes
    python examples/rnn_frequency.py --quick    # a few seconds (what the tests run)

Builds its own small classifier around ``metashot.rnn.PhasedLSTM`` (the layer takes the
timestamps next to the inputs, and ``lengths`` for the padded batch) and trains it on
``metashot.rnn.tasks.FrequencyTask`` with the paper's asynchronous sampling.
"""

from __future__ import annotations

import argparse
import math

import torch
from torch import nn

from metashot.rnn import PhasedLSTM
from metashot.rnn.tasks import FrequencyTask, fixed_test_set


class Classifier(nn.Module):
    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.rnn = PhasedLSTM(1, hidden_size, batch_first=True, period_init_range=(math.e, math.e**3))
        self.head = nn.Linear(hidden_size, 2)

    def forward(self, inputs: torch.Tensor, times: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        _, (h_n, _) = self.rnn(inputs, times, lengths=lengths)  # h_n: (num_layers, B, H)
        return self.head(h_n[-1])


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny run for smoke tests")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--hidden-size", type=int, default=110)
    args = parser.parse_args(argv)
    steps, hidden, test_size = (20, 16, 64) if args.quick else (args.steps, args.hidden_size, 1000)
    torch.manual_seed(0)
    task = FrequencyTask(sampling="async")
    model = Classifier(hidden)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    data = torch.Generator().manual_seed(1)
    for step in range(1, steps + 1):
        batch = task.batch(32, data)
        loss = nn.functional.cross_entropy(model(batch.inputs, batch.times, batch.lengths), batch.targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        model.rnn.constrain_()  # keep tau > 0 and 0 < r_on <= 1
        if step % 200 == 0:
            print(f"step {step}: loss {loss.item():.3f}")
    model.eval()  # leak alpha -> 0
    with torch.no_grad():
        hits = sum(int((model(b.inputs, b.times, b.lengths).argmax(-1) == b.targets).sum())
                   for b in fixed_test_set(task, test_size, seed=123))
    accuracy = hits / test_size
    print(f"test accuracy: {accuracy:.3f}")
    return accuracy


if __name__ == "__main__":
    main()
