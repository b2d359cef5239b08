"""Metrics JSONL, the NaN guard, the time budget, seeding and --device resolution."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest
import torch

from metashot.errors import NonFiniteLossError, UsageError
from metashot.training import (
    MetricsLogger,
    TimeBudget,
    capture_rng_state,
    check_finite,
    resolve_device,
    restore_rng_state,
    seed_everything,
)
from metashot.training.metrics import read_metrics


def test_metrics_logger_writes_one_json_object_per_line_and_truncates_on_resume(tmp_path):
    logger = MetricsLogger(tmp_path / "run/metrics.jsonl")
    for step in (1, 2, 3):
        logger.log(step, loss=torch.tensor(1.0 / step), lr=0.1)
    records = read_metrics(tmp_path / "run/metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2, 3]
    assert records[1]["loss"] == pytest.approx(0.5) and isinstance(records[1]["loss"], float)
    assert all(json.loads(line) for line in (tmp_path / "run/metrics.jsonl").read_text().splitlines())
    logger.truncate_after(2)
    assert [r["step"] for r in read_metrics(tmp_path / "run/metrics.jsonl")] == [1, 2]


def test_a_disabled_logger_writes_nothing(tmp_path):
    MetricsLogger(tmp_path / "m.jsonl", enabled=False).log(1, loss=1.0)
    assert not (tmp_path / "m.jsonl").exists()


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_loss_names_the_step_the_component_and_what_to_try(bad):
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss at step 17 \(.*kl=.*\); try a lower learning rate") as info:
        check_finite(17, {"reconstruction": torch.tensor(1.0), "kl": torch.tensor(bad)})
    assert info.value.step == 17 and not math.isfinite(info.value.losses["kl"])
    check_finite(1, {"loss": torch.tensor(2.0)})  # finite: no error


def test_non_finite_loss_uses_a_custom_hint():
    with pytest.raises(NonFiniteLossError, match="clip the gradients"):
        check_finite(3, {"loss": math.nan}, hint="clip the gradients")


def test_time_budget():
    assert not TimeBudget(None).expired()
    assert TimeBudget(0.0).expired()
    assert not TimeBudget(10.0).expired()


def test_seed_everything_makes_every_rng_repeat():
    def draw(generator):
        return (torch.rand(3).tolist(), torch.rand(3, generator=generator).tolist(),
                np.random.rand(3).tolist(), [random.random() for _ in range(3)])

    assert draw(seed_everything(5)) == draw(seed_everything(5))
    assert draw(seed_everything(5)) != draw(seed_everything(6))


def test_rng_state_capture_and_restore_repeats_the_next_draws():
    generator = seed_everything(1)
    state = capture_rng_state({"sampler": generator})
    first = (torch.rand(2).tolist(), torch.rand(2, generator=generator).tolist(), np.random.rand(), random.random())
    seed_everything(99)
    other = torch.Generator().manual_seed(42)
    restore_rng_state(state, {"sampler": other})
    assert (torch.rand(2).tolist(), torch.rand(2, generator=other).tolist(), np.random.rand(), random.random()) == first


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(UsageError, match="unknown device 'tpu9'|unsupported device"):
        resolve_device("tpu9")
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="CUDA is not available on this machine; use --device cpu"):
            resolve_device("cuda")
