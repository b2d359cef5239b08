"""Checkpoints: safetensors for tensors, JSON for everything else. No pickled code, ever.

Layout of a run folder written by :func:`save_checkpoint`::

    RUN/config.json                 the resolved config (everything needed to rebuild the model)
    RUN/latest                      name of the newest complete checkpoint folder (one line)
    RUN/checkpoint-00001000/        config.json, state.json, model.safetensors, optimizer.safetensors,
                                    rng.safetensors, ... (one .safetensors file per tensor group)

Each checkpoint folder is written under a temporary name, fsynced, then renamed, and only then is
``latest`` replaced (``os.replace``): a crash at any point leaves the previous checkpoint intact.
:func:`load_checkpoint` accepts either a run folder or a checkpoint folder, so a published
checkpoint can be just ``config.json`` + ``model.safetensors`` in one folder.

Optimizer state dicts are flattened with :func:`optimizer_tensors` / :func:`load_optimizer_tensors`:
tensors go to safetensors, the rest (param groups, step counts stored as numbers) to a JSON string
stored as a uint8 tensor under the key ``__json__``.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from metashot.config import load_json, save_json
from metashot.errors import CheckpointError

LATEST = "latest"
_JSON_KEY = "__json__"


@dataclass
class Checkpoint:
    """A loaded checkpoint: ``config`` and ``state`` (JSON) and named tensor groups."""

    path: Path
    config: dict[str, Any]
    state: dict[str, Any]
    tensors: dict[str, dict[str, Tensor]] = field(default_factory=dict)

    @property
    def step(self) -> int:
        return int(self.state.get("step", 0))

    def group(self, name: str) -> dict[str, Tensor]:
        """The tensor group ``name`` (e.g. "model"); a clear error if the checkpoint lacks it."""
        if name not in self.tensors:
            raise CheckpointError(
                f"{self.path}: no {name}.safetensors in this checkpoint (has: {', '.join(sorted(self.tensors)) or 'none'})"
            )
        return self.tensors[name]


def save_checkpoint(
    run_dir: str | os.PathLike[str],
    *,
    config: dict[str, Any],
    tensors: dict[str, dict[str, Tensor]],
    state: dict[str, Any],
    keep: int = 2,
) -> Path:
    """Atomically write a checkpoint into ``run_dir``; return the checkpoint folder.

    Args:
        config: JSON-ready dict to rebuild the model (also written to ``run_dir/config.json``).
        tensors: tensor groups, e.g. ``{"model": model.state_dict(), "optimizer":
            optimizer_tensors(opt), "rng": capture_rng_state()}``; each becomes ``NAME.safetensors``.
        state: JSON-ready training state; must contain ``step`` (int).
        keep: how many checkpoint folders to keep (oldest removed first).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    step = int(state["step"])
    final = run_dir / f"checkpoint-{step:08d}"
    tmp = run_dir / f".tmp-{final.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        save_json(tmp / "config.json", config)
        save_json(tmp / "state.json", state)
        for name, group in tensors.items():
            _save_group(tmp / f"{name}.safetensors", group)
        _fsync_dir(tmp)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _write_text_atomic(run_dir / LATEST, final.name + "\n")
    save_json(run_dir / "config.json", config)
    _prune(run_dir, keep)
    return final


def _save_group(path: Path, group: dict[str, Tensor]) -> None:
    # safetensors wants contiguous, non-shared CPU tensors.
    flat = {k: v.detach().to("cpu").contiguous().clone() for k, v in group.items()}
    save_file(flat, str(path))
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _prune(run_dir: Path, keep: int) -> None:
    folders = sorted(p for p in run_dir.glob("checkpoint-*") if p.is_dir())
    for old in folders[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    for stale in run_dir.glob(".tmp-checkpoint-*"):
        shutil.rmtree(stale, ignore_errors=True)


def resolve_checkpoint_dir(path: str | os.PathLike[str]) -> Path:
    """The checkpoint folder for ``path``: a run folder (via ``latest``) or a checkpoint folder."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint folder; train one first or check the path")
    latest = path / LATEST
    if latest.is_file():
        target = path / latest.read_text(encoding="utf-8").strip()
        if not target.is_dir():
            raise CheckpointError(f"{latest} points to {target.name}, which is missing; the run folder is damaged")
        return target
    if (path / "config.json").is_file() and any(path.glob("*.safetensors")):
        return path
    raise CheckpointError(
        f"{path}: not a checkpoint (expected a 'latest' file or config.json + *.safetensors)"
    )


def has_checkpoint(run_dir: str | os.PathLike[str]) -> bool:
    """True when ``run_dir`` holds a loadable checkpoint."""
    try:
        resolve_checkpoint_dir(run_dir)
    except CheckpointError:
        return False
    return True


def load_checkpoint(
    path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu", groups: list[str] | None = None
) -> Checkpoint:
    """Load a checkpoint written by :func:`save_checkpoint` (or a flat published folder).

    Args:
        groups: tensor groups to load (default: all ``*.safetensors`` files).
    """
    folder = resolve_checkpoint_dir(path)
    config = load_json(folder / "config.json")
    state = load_json(folder / "state.json") if (folder / "state.json").is_file() else {"step": 0}
    tensors: dict[str, dict[str, Tensor]] = {}
    for file in sorted(folder.glob("*.safetensors")):
        if groups is not None and file.stem not in groups:
            continue
        try:
            tensors[file.stem] = load_file(str(file), device=str(map_location))
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"{file}: unreadable safetensors file ({exc}); the checkpoint is corrupt") from None
    return Checkpoint(path=folder, config=config, state=state, tensors=tensors)


# --- optimizer state <-> flat tensors ------------------------------------------------------------


def optimizer_tensors(state_dict: dict[str, Any]) -> dict[str, Tensor]:
    """Flatten ``optimizer.state_dict()`` into safetensors-ready tensors (plus a JSON blob)."""
    tensors: dict[str, Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, param_state in state_dict["state"].items():
        for key, value in param_state.items():
            if isinstance(value, Tensor):
                tensors[f"state.{index}.{key}"] = value
            else:
                scalars.setdefault(str(index), {})[key] = value
    meta = {"param_groups": state_dict["param_groups"], "scalars": scalars}
    tensors[_JSON_KEY] = torch.frombuffer(bytearray(json.dumps(meta).encode()), dtype=torch.uint8).clone()
    return tensors


def load_optimizer_tensors(tensors: dict[str, Tensor]) -> dict[str, Any]:
    """Inverse of :func:`optimizer_tensors`: a dict for ``optimizer.load_state_dict``."""
    if _JSON_KEY not in tensors:
        raise CheckpointError("optimizer state lacks its JSON part; the checkpoint is incomplete")
    meta = json.loads(bytes(tensors[_JSON_KEY].tolist()).decode())
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name == _JSON_KEY:
            continue
        _, index, key = name.split(".", 2)
        state.setdefault(int(index), {})[key] = value
    for index, values in meta["scalars"].items():
        state.setdefault(int(index), {}).update(values)
    # JSON turned tuples (Adam's betas, Rprop's etas, ...) into lists; give them back as tuples.
    groups = [
        {k: tuple(v) if isinstance(v, list) and k != "params" else v for k, v in group.items()}
        for group in meta["param_groups"]
    ]
    return {"state": state, "param_groups": groups}
