"""Checkpoints: exact round trip (model, Adam, RNG), atomic writes, clear errors, nothing pickled."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch import nn

import metashot.training.checkpoint as ckpt
from metashot.errors import CheckpointError
from metashot.training import (
    capture_rng_state,
    has_checkpoint,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
    seed_everything,
)


def _setup(seed: int = 0):
    generator = seed_everything(seed)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Dropout(0.1), nn.Linear(8, 2))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    return model, optimizer, generator


def _train(model, optimizer, generator, steps: int) -> list[float]:
    losses = []
    for _ in range(steps):
        x = torch.randn(16, 4, generator=generator)  # (batch, features)
        noise = torch.randn(16, 2) + float(np.random.rand()) + random.random()
        loss = (model(x) - noise).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def _save(run, model, optimizer, generator, step, **kw):
    return save_checkpoint(
        run,
        config={"hidden": 8},
        tensors={
            "model": model.state_dict(),
            "optimizer": ckpt.optimizer_tensors(optimizer.state_dict()),
            "rng": capture_rng_state({"data": generator}),
        },
        state={"step": step, "best": 0.5},
        **kw,
    )


def test_round_trip_restores_model_adam_and_rng_so_training_continues_identically(tmp_path):
    model, optimizer, generator = _setup()
    _train(model, optimizer, generator, 3)
    folder = _save(tmp_path / "run", model, optimizer, generator, step=3)
    expected = _train(model, optimizer, generator, 4)  # the original carries on

    model2, optimizer2, generator2 = _setup(seed=123)  # different init and RNG: all must be restored
    loaded = load_checkpoint(tmp_path / "run")
    assert loaded.path == folder and loaded.step == 3 and loaded.state["best"] == 0.5
    assert loaded.config == {"hidden": 8}
    model2.load_state_dict(loaded.group("model"))
    optimizer2.load_state_dict(ckpt.load_optimizer_tensors(loaded.group("optimizer")))
    restore_rng_state(loaded.group("rng"), {"data": generator2})
    assert optimizer2.state_dict()["param_groups"] == optimizer.state_dict()["param_groups"]
    assert _train(model2, optimizer2, generator2, 4) == expected
    for a, b in zip(model.parameters(), model2.parameters()):
        assert torch.equal(a, b)


def test_checkpoint_folder_holds_only_json_and_safetensors(tmp_path):
    model, optimizer, generator = _setup()
    _train(model, optimizer, generator, 1)
    folder = _save(tmp_path, model, optimizer, generator, step=1)
    assert sorted(p.name for p in folder.iterdir()) == [
        "config.json", "model.safetensors", "optimizer.safetensors", "rng.safetensors", "state.json"
    ]


def test_a_failure_during_save_leaves_the_previous_checkpoint_loadable(tmp_path, monkeypatch):
    model, optimizer, generator = _setup()
    _train(model, optimizer, generator, 1)
    _save(tmp_path, model, optimizer, generator, step=1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    _train(model, optimizer, generator, 1)

    calls = {"n": 0}
    real = ckpt._save_group

    def crash_on_second_group(path, group):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full (simulated)")
        real(path, group)

    monkeypatch.setattr(ckpt, "_save_group", crash_on_second_group)
    with pytest.raises(OSError, match="disk full"):
        _save(tmp_path, model, optimizer, generator, step=2)
    monkeypatch.undo()

    loaded = load_checkpoint(tmp_path)
    assert loaded.step == 1
    assert all(torch.equal(loaded.group("model")[k], v) for k, v in before.items())
    assert not list(tmp_path.glob(".tmp-*")) and not (tmp_path / "checkpoint-00000002").exists()
    assert (tmp_path / "latest").read_text().strip() == "checkpoint-00000001"


def test_old_checkpoints_are_pruned_to_keep(tmp_path):
    model, optimizer, generator = _setup()
    for step in (1, 2, 3):
        _save(tmp_path, model, optimizer, generator, step=step, keep=2)
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == ["checkpoint-00000002", "checkpoint-00000003"]
    assert load_checkpoint(tmp_path).step == 3


@pytest.mark.parametrize("damage", ["garbage", "truncate"])
def test_corrupt_safetensors_raise_checkpoint_error_naming_the_file(tmp_path, damage):
    model, optimizer, generator = _setup()
    folder = _save(tmp_path, model, optimizer, generator, step=1)
    target = folder / "model.safetensors"
    data = target.read_bytes()
    target.write_bytes(b"\x00\xff not safetensors" if damage == "garbage" else data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"model\.safetensors: unreadable safetensors file"):
        load_checkpoint(tmp_path)


def test_missing_and_damaged_run_folders_raise_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint folder"):
        load_checkpoint(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="not a checkpoint"):
        load_checkpoint(tmp_path / "empty")
    assert not has_checkpoint(tmp_path / "empty")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken/latest").write_text("checkpoint-00000009\n")
    with pytest.raises(CheckpointError, match="damaged"):
        load_checkpoint(tmp_path / "broken")


def test_a_group_that_is_absent_is_named(tmp_path):
    model, optimizer, generator = _setup()
    _save(tmp_path, model, optimizer, generator, step=1)
    with pytest.raises(CheckpointError, match="no ema.safetensors"):
        load_checkpoint(tmp_path).group("ema")


def test_a_flat_published_folder_loads(tmp_path):
    from safetensors.torch import save_file

    from metashot.config import save_json

    model, _, _ = _setup()
    save_json(tmp_path / "config.json", {"hidden": 8})
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "model.safetensors"))
    loaded = load_checkpoint(tmp_path)
    assert loaded.step == 0 and set(loaded.tensors) == {"model"}
