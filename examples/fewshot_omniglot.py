"""Train a Matching Network on Omniglot with the plain PyTorch API, then score it on test episodes.

This is the library's few-shot API end to end, without the CLI:

- ``EpisodeSampler`` as a ``DataLoader`` batch sampler (its ``collate`` builds an ``Episode``);
- ``MatchingNetwork(full_context=...)``: a pure function of the episode, log-probabilities out;
- ``evaluate`` on the fixed, seeded test episodes every method is scored on.

    python examples/fewshot_omniglot.py            # ~2000 episodes: about 95% 5-way 1-shot
    python examples/fewshot_omniglot.py --cheap    # a few steps, for CI

Needs the Omniglot files in $METASHOT_DATA (or --data-dir).
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from metashot.data.omniglot import load_omniglot
from metashot.fewshot import EpisodeSampler, MatchingNetwork, evaluate


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cheap", action="store_true", help="a few steps and episodes (CI)")
    parser.add_argument("--fce", action="store_true", help="full context embeddings")
    parser.add_argument("--episodes", type=int, default=2000, help="training episodes")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    n_train, n_test = (3, 10) if args.cheap else (args.episodes, 1000)

    torch.manual_seed(0)
    train = load_omniglot("trainval", root=args.data_dir)  # 1200 characters x 4 rotations
    test = load_omniglot("test", root=args.data_dir)  # 423 characters x 4 rotations, never seen in training
    sampler = EpisodeSampler(train.labels, n_way=5, n_shot=1, n_query=15, n_episodes=n_train,
                             generator=torch.Generator().manual_seed(0), class_names=train.class_names)
    loader = DataLoader(train, batch_sampler=sampler, collate_fn=sampler.collate)

    model = MatchingNetwork(full_context=args.fce, read_steps=5, scale=10.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for step, episode in enumerate(loader, 1):
        log_probs = model(episode.support_images, episode.support_labels, episode.query_images, n_way=5)  # (75, 5)
        loss = F.nll_loss(log_probs, episode.query_labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 200 == 0:
            print(f"episode {step}: loss {loss.item():.3f}")

    result = evaluate(model, test, n_way=5, n_shot=1, n_query=15, n_episodes=n_test, seed=0)
    print(f"5-way 1-shot test accuracy: {100 * result.accuracy:.2f}% ± {100 * result.ci95:.2f}% ({n_test} episodes)")
    return {"accuracy": result.accuracy, "ci95": result.ci95}


if __name__ == "__main__":
    main()
