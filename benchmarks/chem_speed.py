"""Speed of the chemical VAE: training and decoding molecules per second, side by side with a peer.

Peer: the MOSES VAE (``molsets`` 0.3.1, ``moses/vae/model.py``; Polykovskiy et al. 2020), the most used
open SMILES VAE. ``pip install molsets`` fails on a pinned dependency, and its package ``__init__``
imports the whole metrics stack, so we load only ``moses/vae/model.py`` (it imports nothing but torch)
straight from an installed ``moses`` package or from the wheel
(``pip download molsets==0.3.1 --no-deps -d DIR``; pass ``--moses-wheel DIR/molsets-0.3.1-py3-none-any.whl``
or set ``MOSES_WHEEL``). Without it the peer column is skipped and the reason printed.

Both models train on the same ZINC-250k molecules with the same batch size; each with its own
published architecture (ours: the paper's conv encoder + 3x488 GRU decoder over 120 positions;
MOSES: bi-GRU encoder 256, 3x512 GRU decoder over packed sequences of the true lengths). We also time
ours with length-bucketed, padding-trimmed batches (the ``paper-fast`` preset used on the GPU).

    python benchmarks/chem_speed.py --device cpu --steps 3 --batch 128 --out results/chem/speed_cpu.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import time
import types
import zipfile
from pathlib import Path

import torch

from metashot.chem.config import VAEConfig
from metashot.chem.functional import gaussian_kl, reconstruction_loss
from metashot.chem.smiles import SmilesVocab
from metashot.chem.vae import SmilesVAE
from metashot.data.molecules import load_zinc250k
from metashot.training import resolve_device


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _clock(device: torch.device) -> float:
    """GPU: wall time. CPU: this process's CPU time, so that other jobs on a shared machine do not
    distort the comparison (run with --threads 1 so CPU time equals the work done)."""
    return time.perf_counter() if device.type == "cuda" else time.process_time()


# ---------------------------------------------------------------------------------------------
# the peer


def load_moses_vae(wheel: str | None) -> tuple[type | None, types.SimpleNamespace | None, str]:
    """(VAE class, default config, where from) or (None, None, reason)."""
    source: str | None = None
    code: str | None = None
    spec = importlib.util.find_spec("moses")
    if spec is not None and spec.submodule_search_locations:
        path = Path(next(iter(spec.submodule_search_locations))) / "vae" / "model.py"
        if path.is_file():
            code, source = path.read_text(), str(path)
    if code is None and wheel and Path(wheel).is_file():
        with zipfile.ZipFile(wheel) as zf:
            code, source = zf.read("moses/vae/model.py").decode(), f"{wheel}!moses/vae/model.py"
    if code is None:
        return None, None, ("MOSES VAE not found: `pip download molsets==0.3.1 --no-deps -d DIR` and pass "
                            "--moses-wheel DIR/molsets-0.3.1-py3-none-any.whl")
    # molsets 0.3.1's sample() builds its end-of-sequence mask as uint8, which torch >= 2 rejects in
    # masked_fill; the only change we make to the peer is that dtype (bool), so its decoding can be timed.
    patched = code.replace("dtype=torch.uint8", "dtype=torch.bool")
    if patched != code:
        source = f"{source} (uint8 mask -> bool)"
        code = patched
    module = types.ModuleType("moses_vae_model")
    exec(compile(code, source or "moses/vae/model.py", "exec"), module.__dict__)
    # defaults of moses/vae/config.py (molsets 0.3.1)
    config = types.SimpleNamespace(q_cell="gru", q_bidir=False, q_d_h=256, q_n_layers=1, q_dropout=0.5,
                                   d_cell="gru", d_n_layers=3, d_dropout=0.0, d_z=128, d_d_h=512,
                                   freeze_embeddings=False)
    return module.VAE, config, source or ""


class _MosesVocab:
    """The parts of ``moses.utils.OneHotVocab`` its VAE uses."""

    def __init__(self, smiles: list[str]) -> None:
        chars = sorted({c for s in smiles for c in s})
        self.c2i = {c: i for i, c in enumerate(chars)}
        self.i2c = dict(enumerate(chars))
        self.bos, self.eos, self.pad, self.unk = len(chars), len(chars) + 1, len(chars) + 2, len(chars) + 3
        self.vectors = torch.eye(len(chars) + 4)

    def __len__(self) -> int:
        return len(self.c2i) + 4

    def string2ids(self, s: str, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        return [self.bos] * add_bos + [self.c2i.get(c, self.unk) for c in s] + [self.eos] * add_eos

    def ids2string(self, ids: list[int], rem_bos: bool = True, rem_eos: bool = True) -> str:
        return "".join(self.i2c.get(i, "") for i in ids)


# ---------------------------------------------------------------------------------------------
# timing


def time_ours(smiles: list[str], batch: int, steps: int, decode_n: int, device: torch.device, trim: bool) -> dict:
    vocab = SmilesVocab.from_smiles(smiles)
    model = SmilesVAE(len(vocab), VAEConfig()).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=4e-4)
    ids_all = vocab.encode_batch(smiles).to(device)
    lengths = (ids_all != 0).sum(1)
    if trim:
        # what bucket_by_length + trim_padding do: sort a pool of molecules by length, cut it into
        # batches, and time batches spread evenly over the pool (short, medium and long ones alike)
        ids_all = ids_all[torch.argsort(lengths.cpu(), stable=True).to(device)]
        n_batches = len(smiles) // batch
        pick = torch.linspace(0, n_batches - 1, steps + 1).round().long().tolist()

    def step(i: int) -> None:
        x = ids_all[i * batch : (i + 1) * batch]
        n = min(120, int((x != 0).sum(1).max()) + 1) if trim else 120
        out = model(x, decode_length=n)
        loss = (reconstruction_loss(out.logits, x[:, :n]).mean() + gaussian_kl(out.mu, out.logvar).mean()) / 120
        opt.zero_grad()
        loss.backward()
        opt.step()

    order = pick if trim else list(range(steps + 1))
    step(order[0])  # warm-up
    _sync(device)
    t = _clock(device)
    for i in order[1:]:
        step(i)
    _sync(device)
    train_rate = steps * batch / (_clock(device) - t)
    model.eval()
    z = torch.randn(decode_n, 196, device=device)
    model.generate(z[:8])
    _sync(device)
    t = _clock(device)
    model.generate(z, temperature=1.0)
    _sync(device)
    return {"train_molecules_per_second": train_rate, "decode_molecules_per_second": decode_n / (_clock(device) - t),
            "parameters": sum(p.numel() for p in model.parameters())}


def time_moses(vae_cls: type, config: types.SimpleNamespace, smiles: list[str], batch: int, steps: int, decode_n: int,
               device: torch.device) -> dict:
    vocab = _MosesVocab(smiles)
    model = vae_cls(vocab, config).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=3e-4)

    def step(i: int) -> None:
        chunk = sorted(smiles[i * batch : (i + 1) * batch], key=len, reverse=True)  # MOSES collate sorts too
        x = [model.string2tensor(s) for s in chunk]
        kl, rec = model(x)
        opt.zero_grad()
        (kl + rec).backward()
        opt.step()

    step(0)
    _sync(device)
    t = _clock(device)
    for i in range(1, steps + 1):
        step(i)
    _sync(device)
    train_rate = steps * batch / (_clock(device) - t)
    model.eval()
    result = {"train_molecules_per_second": train_rate, "parameters": sum(p.numel() for p in model.parameters())}
    try:
        model.sample(8, max_len=100)
        _sync(device)
        t = _clock(device)
        model.sample(decode_n, max_len=100)
        _sync(device)
        result["decode_molecules_per_second"] = decode_n / (_clock(device) - t)
    except Exception as exc:  # molsets 0.3.1 indexes with uint8 masks, which newer torch rejects
        result["decode_molecules_per_second"] = None
        result["decode_error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=3, help="timed training steps (after one warm-up)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--decode", type=int, default=256, help="molecules decoded from the prior")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--moses-wheel", default=os.environ.get("MOSES_WHEEL"))
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", default=None, help="JSON file (default results/chem/speed_<device>.json)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    torch.manual_seed(0)
    # a pool of max(16, steps + 1) batches of ZINC molecules in file (random) order
    smiles = load_zinc250k(args.data_dir, properties=False).smiles[: args.batch * max(16, args.steps + 1)]
    rows = {"ours (paper, 120 positions)": time_ours(smiles, args.batch, args.steps, args.decode, device, trim=False),
            "ours (bucketed + trimmed)": time_ours(smiles, args.batch, args.steps, args.decode, device, trim=True)}
    vae_cls, config, where = load_moses_vae(args.moses_wheel)
    if vae_cls is None:
        print(f"peer skipped: {where}", file=sys.stderr)
    else:
        rows["MOSES VAE (molsets 0.3.1)"] = time_moses(vae_cls, config, smiles, args.batch, args.steps, args.decode, device)
    peer = rows.get("MOSES VAE (molsets 0.3.1)")
    print(f"{'model':32s} {'params':>9s} {'train mol/s':>12s} {'decode mol/s':>13s} {'train x peer':>13s} {'decode x peer':>14s}")
    for name, r in rows.items():
        ratio_t = r["train_molecules_per_second"] / peer["train_molecules_per_second"] if peer else None
        ratio_d = (r["decode_molecules_per_second"] / peer["decode_molecules_per_second"]
                   if peer and peer.get("decode_molecules_per_second") and r.get("decode_molecules_per_second") else None)
        r["train_ratio_vs_peer"], r["decode_ratio_vs_peer"] = ratio_t, ratio_d
        dec = r.get("decode_molecules_per_second")
        print(f"{name:32s} {r['parameters']:9d} {r['train_molecules_per_second']:12.1f} "
              f"{(f'{dec:.1f}' if dec else 'n/a'):>13s} {(f'{ratio_t:.2f}' if ratio_t else '-'):>13s} "
              f"{(f'{ratio_d:.2f}' if ratio_d else '-'):>14s}")
    result = {
        "device": str(device), "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(), "torch": torch.__version__, "batch": args.batch, "steps": args.steps,
        "decode": args.decode, "peer_source": where, "rows": rows,
        "clock": "wall time" if device.type == "cuda" else "process CPU time (shared machine)",
        "command": "python benchmarks/chem_speed.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    out = Path(args.out or f"results/chem/speed_{device.type}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
