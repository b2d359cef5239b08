"""Matching Networks speed: training and evaluation episodes per second, ours vs easyfsl, side by side.

Same backbone (our ``Conv4``, the paper's 4 x [conv 3x3 64, BN, ReLU, max-pool]), same episode
shape (5-way 1-shot 15-query, as the issue's reference), Adam 1e-3, on the same Omniglot images.
Each case runs in its own subprocess so its peak memory (max RSS on CPU, max allocated on CUDA) is
its own. Cases:

- ``ours``            MatchingNetwork without FCE, one episode per optimizer step;
- ``ours-fce``        with full context embeddings, K = 5 read steps (= easyfsl's K for 5 supports);
- ``ours-fce-batch8`` FCE, 8 episodes batched per step (one conv forward for all of them);
- ``easyfsl-fce``     ``easyfsl.methods.MatchingNetworks`` (always FCE; K = support size), fed the
  same episode tensors from our sampler: this measures its model code only, not its PIL data
  pipeline, which is in the peer's favour.

Evaluation: episodes/s of scoring test episodes (ours: :func:`metashot.fewshot.evaluate`, batched;
easyfsl: ``process_support_set`` + ``forward`` per episode under ``no_grad``).

easyfsl imports torchvision, and PyPI's torchvision does not import beside the project's local
torch 2.13.0 CPU build. Give the benchmark its own environment::

    python3 -m venv /tmp/fewshot-peer-venv
    /tmp/fewshot-peer-venv/bin/pip install torch==2.14.1 torchvision==0.29.1 easyfsl numpy safetensors tqdm pillow
    PYTHONPATH=src /tmp/fewshot-peer-venv/bin/python benchmarks/fewshot_speed.py

Run with the project's ``.venv`` instead and the easyfsl rows say "not importable"; ours still run.

    python benchmarks/fewshot_speed.py [--device cpu|cuda] [--steps 60] [--out results/fewshot/speed.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

CASES = ("ours", "ours-fce", "ours-fce-batch8", "easyfsl-fce")
N_WAY, N_SHOT, N_QUERY = 5, 1, 15


# --- one case, in its own process -------------------------------------------------------------------


def _peer_model(backbone):
    """easyfsl MatchingNetworks around ``backbone`` (64-D features).

    easyfsl >= 1.x takes ``feature_dimension``; older versions probe the backbone with (4, 3, 32, 32)
    images, which a 1-channel 28x28 Conv4 cannot take, so the probe is told the true 64-D output.
    """
    import inspect

    import torch
    from easyfsl.methods import MatchingNetworks, few_shot_classifier

    if "feature_dimension" in inspect.signature(MatchingNetworks.__init__).parameters:
        return MatchingNetworks(backbone=backbone, feature_dimension=64)
    few_shot_classifier.compute_backbone_output_shape = lambda _backbone: torch.Size([64])
    return MatchingNetworks(backbone=backbone)


def run_case(case: str, device_name: str, steps: int, eval_episodes: int, data_dir: str | None) -> dict:
    import torch
    import torch.nn.functional as F

    from metashot.data.omniglot import load_omniglot
    from metashot.fewshot import Conv4, EpisodeSampler, MatchingNetwork, episode_from_indices, evaluate
    from metashot.fewshot.episodes import fixed_episodes

    torch.manual_seed(0)
    device = torch.device(device_name)
    if device.type == "cpu":
        torch.set_num_threads(1)
    train = load_omniglot("trainval", root=data_dir)
    test = load_omniglot("test", root=data_dir)
    images = train.images.to(device)
    batch = 8 if case.endswith("batch8") else 1
    sampler = EpisodeSampler(train.labels, N_WAY, N_SHOT, N_QUERY, steps, generator=torch.Generator().manual_seed(0))
    backbone = Conv4()
    if case.startswith("easyfsl"):
        model = _peer_model(backbone).to(device)
    else:
        model = MatchingNetwork(backbone, full_context=case != "ours", read_steps=5).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def train_step() -> None:
        idx = sampler.sample(batch).to(device)
        ep = episode_from_indices(images, idx, N_SHOT)
        if case.startswith("easyfsl"):
            model.process_support_set(ep.support_images[0], ep.support_labels[0])
            log_probs = model(ep.query_images[0])
            loss = F.nll_loss(log_probs, ep.query_labels[0])
        else:
            log_probs = model(ep.support_images, ep.support_labels, ep.query_images, N_WAY)
            loss = F.nll_loss(log_probs.flatten(0, 1), ep.query_labels.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    model.train()
    for _ in range(5):  # warm-up (allocator, cuDNN autotune)
        train_step()
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(steps):
        train_step()
    sync()
    train_seconds = time.perf_counter() - start

    model.eval()
    start = time.perf_counter()
    if case.startswith("easyfsl"):
        indices = fixed_episodes(test.labels, N_WAY, N_SHOT, N_QUERY, eval_episodes, seed=0)
        test_images = test.images.to(device)
        correct = 0.0
        with torch.no_grad():
            for i in range(eval_episodes):
                ep = episode_from_indices(test_images, indices[i : i + 1].to(device), N_SHOT)
                model.process_support_set(ep.support_images[0], ep.support_labels[0])
                correct += float((model(ep.query_images[0]).argmax(-1) == ep.query_labels[0]).float().mean())
        accuracy = correct / eval_episodes
    else:
        accuracy = evaluate(model, test, n_way=N_WAY, n_shot=N_SHOT, n_query=N_QUERY, n_episodes=eval_episodes,
                            seed=0, device=device).accuracy
    sync()
    eval_seconds = time.perf_counter() - start
    peak = (
        torch.cuda.max_memory_allocated() / 2**20
        if device.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    return {
        "case": case,
        "train_episodes_per_second": steps * batch / train_seconds,
        "eval_episodes_per_second": eval_episodes / eval_seconds,
        "peak_memory_mib": round(peak, 1),
        "memory_kind": "cuda max allocated" if device.type == "cuda" else "process max RSS",
        "train_episodes": steps * batch,
        "eval_episodes": eval_episodes,
        "eval_accuracy_after_short_training": accuracy,
        "torch": torch.__version__,
    }


# --- driver --------------------------------------------------------------------------------------------


def _peer_importable() -> str | None:
    try:
        import easyfsl  # noqa: F401
    except Exception as exc:  # torchvision mismatch raises RuntimeError/ImportError/OSError
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return None


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=60, help="timed training episodes per case (x8 for batch8)")
    parser.add_argument("--eval-episodes", type=int, default=200)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=CASES)
    parser.add_argument("--out", default="results/fewshot/speed.json")
    parser.add_argument("--case", default=None, help=argparse.SUPPRESS)  # internal: run one case, print JSON
    args = parser.parse_args(argv)
    if args.case:
        print(json.dumps(run_case(args.case, args.device, args.steps, args.eval_episodes, args.data_dir)))
        return {}
    rows = []
    peer_problem = _peer_importable()
    for case in args.cases:
        if case.startswith("easyfsl") and peer_problem:
            rows.append({"case": case, "skipped": f"easyfsl not importable here ({peer_problem}); see the docstring"})
            continue
        cmd = [sys.executable, __file__, "--case", case, "--device", args.device, "--steps", str(args.steps),
               "--eval-episodes", str(args.eval_episodes)] + (["--data-dir", args.data_dir] if args.data_dir else [])
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            rows.append({"case": case, "skipped": f"failed: {proc.stderr.strip().splitlines()[-1:]}"})
            continue
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    peer = next((r for r in rows if r["case"] == "easyfsl-fce" and "skipped" not in r), None)
    print(f"{'case':18s} {'train ep/s':>11s} {'eval ep/s':>10s} {'peak MiB':>9s} {'train x peer':>13s} {'eval x peer':>12s}")
    for r in rows:
        if "skipped" in r:
            print(f"{r['case']:18s} skipped: {r['skipped']}")
            continue
        if peer:
            r["train_ratio_vs_easyfsl"] = r["train_episodes_per_second"] / peer["train_episodes_per_second"]
            r["eval_ratio_vs_easyfsl"] = r["eval_episodes_per_second"] / peer["eval_episodes_per_second"]
        ratio_t = f"{r['train_ratio_vs_easyfsl']:.2f}x" if peer else "-"
        ratio_e = f"{r['eval_ratio_vs_easyfsl']:.2f}x" if peer else "-"
        print(f"{r['case']:18s} {r['train_episodes_per_second']:11.1f} {r['eval_episodes_per_second']:10.1f} "
              f"{r['peak_memory_mib']:9.0f} {ratio_t:>13s} {ratio_e:>12s}")
    report = {
        "benchmark": "fewshot_speed",
        "episode": {"n_way": N_WAY, "n_shot": N_SHOT, "n_query": N_QUERY},
        "device": args.device,
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "python": platform.python_version()},
        "command": " ".join([Path(sys.executable).name, "benchmarks/fewshot_speed.py", *(argv or sys.argv[1:])]),
        "rows": rows,
    }
    if args.device.startswith("cuda"):
        import torch

        report["machine"]["gpu"] = torch.cuda.get_device_name(0)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
