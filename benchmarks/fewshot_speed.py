"""Matching Networks speed: training and evaluation episodes per second, ours vs easyfsl, side by side.

Same backbone (our ``Conv4``, the paper's 4 x [conv 3x3 64, BN, ReLU, max-pool]), same episode
shape (5-way 1-shot 15-query, as the issue's reference), Adam 1e-3, the same Omniglot episodes.
Cases:

- ``ours``            MatchingNetwork without FCE, one episode per optimizer step;
- ``ours-fce``        with full context embeddings, K = 5 read steps (= easyfsl's K for 5 supports);
- ``ours-fce-batch8`` FCE, 8 episodes batched per step (one conv forward for all of them);
- ``easyfsl-fce``     ``easyfsl.methods.MatchingNetworks`` (always FCE; K = support size), fed the
  same episode tensors from our sampler: this times its model code only, not its PIL data
  pipeline, which is in the peer's favour.

**Timing is interleaved**: all models live in one process and take turns, one training step (then
one chunk of evaluation episodes) each, round after round. On a machine shared with other jobs the
load then hits every case alike, so the ratios are fair even when the absolute numbers wander.
Evaluation: ours scores each chunk of episodes in batches as :func:`metashot.fewshot.evaluate`
does on that device (about 96 images per forward pass on CPU, 8192 on CUDA); easyfsl runs
``process_support_set`` + ``forward`` per episode under ``no_grad``. Peak memory comes from a
separate short run of each case in its own process on synthetic Omniglot-shaped images (CUDA: max
allocated; CPU: growth of the max RSS once the model is built).

easyfsl imports torchvision, and PyPI's torchvision does not import beside the project's local
torch 2.13.0 CPU build. Give the benchmark its own environment::

    python3 -m venv /tmp/fewshot-peer-venv
    /tmp/fewshot-peer-venv/bin/pip install torch==2.14.1 torchvision==0.29.1 easyfsl numpy safetensors tqdm pillow
    PYTHONPATH=src /tmp/fewshot-peer-venv/bin/python benchmarks/fewshot_speed.py

Run with the project's ``.venv`` instead and the easyfsl rows say "not importable"; ours still run.

    python benchmarks/fewshot_speed.py [--device cpu|cuda] [--rounds 40] [--out results/fewshot/speed.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

CASES = ("ours", "ours-fce", "ours-fce-batch8", "easyfsl-fce")
N_WAY, N_SHOT, N_QUERY = 5, 1, 15
EVAL_CHUNK = 12  # episodes per evaluation turn (ours: batched as evaluate() batches on the device)


# --- building the cases -------------------------------------------------------------------------------


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


class Case:
    """One model with its optimizer, a training step and an evaluation chunk."""

    def __init__(self, name: str, device, images, sampler, seed: int = 0) -> None:
        import torch

        from metashot.fewshot import Conv4, MatchingNetwork

        torch.manual_seed(seed)  # same initial Conv4 weights for every case
        self.name, self.device, self.images, self.sampler = name, device, images, sampler
        self.batch = 8 if name.endswith("batch8") else 1
        self.peer = name.startswith("easyfsl")
        if self.peer:
            self.model = _peer_model(Conv4()).to(device)
        else:
            self.model = MatchingNetwork(Conv4(), full_context=name != "ours", read_steps=5).to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.train_seconds = self.eval_seconds = 0.0
        self.train_episodes = self.eval_episodes = 0
        self.correct = 0.0

    def train_step(self) -> None:
        import torch.nn.functional as F

        from metashot.fewshot import episode_from_indices

        self.model.train()
        ep = episode_from_indices(self.images, self.sampler.sample(self.batch).to(self.device), N_SHOT)
        if self.peer:
            self.model.process_support_set(ep.support_images[0], ep.support_labels[0])
            loss = F.nll_loss(self.model(ep.query_images[0]), ep.query_labels[0])
        else:
            log_probs = self.model(ep.support_images, ep.support_labels, ep.query_images, N_WAY)
            loss = F.nll_loss(log_probs.flatten(0, 1), ep.query_labels.flatten())
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.train_episodes += self.batch

    def eval_chunk(self, test_images, indices) -> None:
        import torch

        from metashot.fewshot import episode_from_indices
        from metashot.fewshot.evaluate import episodes_per_batch

        self.model.eval()
        with torch.no_grad():
            ep = episode_from_indices(test_images, indices.to(self.device), N_SHOT)
            if self.peer:
                for i in range(indices.shape[0]):
                    self.model.process_support_set(ep.support_images[i], ep.support_labels[i])
                    pred = self.model(ep.query_images[i]).argmax(-1)
                    self.correct += float((pred == ep.query_labels[i]).float().mean())
            else:  # batched as evaluate() batches on this device
                step = episodes_per_batch(N_WAY * (N_SHOT + N_QUERY), self.device)
                for i in range(0, indices.shape[0], step):
                    part = slice(i, i + step)
                    log_probs = self.model(ep.support_images[part], ep.support_labels[part], ep.query_images[part], N_WAY)
                    self.correct += float((log_probs.argmax(-1) == ep.query_labels[part]).float().mean(-1).sum())
        self.eval_episodes += indices.shape[0]


def _timed(case: Case, fn, kind: str, device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    setattr(case, kind, getattr(case, kind) + time.perf_counter() - start)


def _data(device, data_dir):
    import torch

    from metashot.data.omniglot import load_omniglot
    from metashot.fewshot import EpisodeSampler
    from metashot.fewshot.episodes import fixed_episodes

    train = load_omniglot("trainval", root=data_dir)
    test = load_omniglot("test", root=data_dir)
    sampler = EpisodeSampler(train.labels, N_WAY, N_SHOT, N_QUERY, 10**9, generator=torch.Generator().manual_seed(0))
    return train.images.to(device), sampler, test, fixed_episodes


def measure(names: list[str], device_name: str, rounds: int, eval_episodes: int, data_dir: str | None) -> list[dict]:
    """Interleaved timing of ``names``: ``rounds`` training turns each, then the evaluation in turns."""
    import torch

    device = torch.device(device_name)
    if device.type == "cpu":
        torch.set_num_threads(1)
    images, sampler, test, fixed_episodes = _data(device, data_dir)
    cases = [Case(n, device, images, sampler) for n in names]
    for case in cases:  # warm-up (allocator, oneDNN/cuDNN kernel choice)
        for _ in range(3):
            case.train_step()
    for _ in range(rounds):
        for case in cases:
            _timed(case, case.train_step, "train_seconds", device)
    indices = fixed_episodes(test.labels, N_WAY, N_SHOT, N_QUERY, eval_episodes, seed=0)
    test_images = test.images.to(device)
    for start in range(0, eval_episodes, EVAL_CHUNK):
        chunk = indices[start : start + EVAL_CHUNK]
        for case in cases:
            _timed(case, lambda c=case, x=chunk: c.eval_chunk(test_images, x), "eval_seconds", device)
    return [
        {
            "case": c.name,
            "train_episodes_per_second": c.train_episodes / c.train_seconds,
            "eval_episodes_per_second": c.eval_episodes / c.eval_seconds,
            "train_episodes": c.train_episodes,
            "eval_episodes": c.eval_episodes,
            "eval_accuracy_after_short_training": c.correct / c.eval_episodes,
        }
        for c in cases
    ]


def _status_mib(key: str) -> float:
    """VmRSS / VmHWM of this process in MiB. (Not ru_maxrss: Linux carries the parent's peak
    across fork + exec, so a subprocess would report the driver's.)"""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_memory(name: str, device_name: str) -> float:
    """MiB used by ``name`` alone for 5 training steps and one evaluation chunk, on synthetic
    Omniglot-shaped data (so that loading the real arrays does not set the peak): CUDA max allocated,
    or on CPU the growth of the process's peak RSS over its RSS before the model was built."""
    import torch

    from metashot.fewshot import EpisodeSampler
    from metashot.fewshot.episodes import fixed_episodes

    device = torch.device(device_name)
    if device.type == "cpu":
        torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(200).repeat_interleave(20)
    images = torch.randint(0, 256, (4000, 1, 28, 28), dtype=torch.uint8, generator=g).to(device)
    sampler = EpisodeSampler(labels, N_WAY, N_SHOT, N_QUERY, 10**9, generator=g)
    before = _status_mib("VmRSS")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    case = Case(name, device, images, sampler)
    for _ in range(5):
        case.train_step()
    case.eval_chunk(images, fixed_episodes(labels, N_WAY, N_SHOT, N_QUERY, EVAL_CHUNK, seed=0))
    if device.type == "cuda":
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    return _status_mib("VmHWM") - before


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
    parser.add_argument("--rounds", type=int, default=40, help="timed training turns per case")
    parser.add_argument("--eval-episodes", type=int, default=240)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=CASES)
    parser.add_argument("--out", default="results/fewshot/speed.json")
    parser.add_argument("--memory-of", default=None, help=argparse.SUPPRESS)  # internal: one case's peak memory
    args = parser.parse_args(argv)
    if args.memory_of:
        print(json.dumps({"peak_memory_mib": peak_memory(args.memory_of, args.device)}))
        return {}
    peer_problem = _peer_importable()
    names = [c for c in args.cases if not (c.startswith("easyfsl") and peer_problem)]
    rows = measure(names, args.device, args.rounds, args.eval_episodes, args.data_dir)
    for case in args.cases:
        if case not in names:
            rows.append({"case": case, "skipped": f"easyfsl not importable here ({peer_problem}); see the docstring"})
    peer = next((r for r in rows if r["case"] == "easyfsl-fce" and "skipped" not in r), None)
    for r in rows:
        if peer and "skipped" not in r:
            r["train_ratio_vs_easyfsl"] = r["train_episodes_per_second"] / peer["train_episodes_per_second"]
            r["eval_ratio_vs_easyfsl"] = r["eval_episodes_per_second"] / peer["eval_episodes_per_second"]
    report = _write(args, argv, rows)  # the timings first: a time limit during the memory runs loses nothing
    for row in rows:
        if "skipped" in row:
            continue
        cmd = [sys.executable, __file__, "--memory-of", row["case"], "--device", args.device]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        row["peak_memory_mib"] = (
            round(json.loads(proc.stdout.strip().splitlines()[-1])["peak_memory_mib"], 1) if proc.returncode == 0 else None
        )
        row["memory_kind"] = "cuda max allocated" if args.device.startswith("cuda") else "growth of the process's max RSS"
    report = _write(args, argv, rows)
    print(f"{'case':18s} {'train ep/s':>11s} {'eval ep/s':>10s} {'peak MiB':>9s} {'train x peer':>13s} {'eval x peer':>12s}")
    for r in rows:
        if "skipped" in r:
            print(f"{r['case']:18s} skipped: {r['skipped']}")
            continue
        ratio_t = f"{r['train_ratio_vs_easyfsl']:.2f}x" if peer else "-"
        ratio_e = f"{r['eval_ratio_vs_easyfsl']:.2f}x" if peer else "-"
        mem = f"{r['peak_memory_mib']:9.0f}" if r.get("peak_memory_mib") is not None else f"{'?':>9s}"
        print(f"{r['case']:18s} {r['train_episodes_per_second']:11.1f} {r['eval_episodes_per_second']:10.1f} "
              f"{mem} {ratio_t:>13s} {ratio_e:>12s}")
    return report


def _write(args: argparse.Namespace, argv: list[str] | None, rows: list[dict]) -> dict:
    import torch

    report = {
        "benchmark": "fewshot_speed",
        "episode": {"n_way": N_WAY, "n_shot": N_SHOT, "n_query": N_QUERY},
        "device": args.device,
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__},
        "command": " ".join(["python", "benchmarks/fewshot_speed.py", *(argv if argv is not None else sys.argv[1:])]),
        "rows": rows,
    }
    if args.device.startswith("cuda"):
        report["machine"]["gpu"] = torch.cuda.get_device_name(0)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
