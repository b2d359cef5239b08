"""Training learns (loss falls on real ZINC molecules), resumes, and exports a compact copy."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from metashot.chem.config import preset
from metashot.chem.functional import cosine_lr_factor
from metashot.chem.train import export_weights, load_model, train
from metashot.errors import UsageError


def _losses(run: Path) -> list[float]:
    return [r["loss"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if "loss" in r]


@pytest.mark.needs_shared_data
def test_tiny_training_run_reduces_the_loss(tiny_run: Path) -> None:
    losses = _losses(tiny_run)
    # step 1 vs step 50 of 60: a tiny GRU learns the SMILES alphabet and the padding quickly
    # (measured 4.24 -> 2.18); half the initial loss leaves room for thread-count noise.
    assert losses[-1] < 0.6 * losses[0]


@pytest.mark.needs_shared_data
def test_resume_continues_from_the_checkpoint_and_refuses_to_overwrite(tmp_path: Path, shared_data: Path) -> None:
    cfg = preset("tiny", max_molecules=300, eval_every=1000, bucket_by_length=True, trim_padding=True)
    run = tmp_path / "run"
    first = train(cfg, run, data_dir=str(shared_data), device="cpu", max_steps=3, show_progress=False)
    assert first.step == 3 and first.stopped_because == "max_steps"
    with pytest.raises(UsageError, match="--resume"):
        train(cfg, run, data_dir=str(shared_data), device="cpu", max_steps=5, show_progress=False)
    second = train(cfg, run, data_dir=str(shared_data), device="cpu", max_steps=5, resume=True, show_progress=False)
    assert second.step == 5


@pytest.mark.needs_shared_data
def test_export_writes_fp16_weights_that_load_back(tiny_run: Path, tmp_path: Path) -> None:
    out = export_weights(tiny_run, tmp_path / "export")
    model, vocab, cfg = load_model(out)
    full, _, _ = load_model(tiny_run)
    assert cfg.label == "tiny" and len(vocab) == full.vocab_size
    ids = vocab.encode_batch(["CCO", "c1ccccc1"])
    full.eval()
    assert torch.allclose(model.encode(ids)[0], full.encode(ids)[0], atol=5e-2)


def test_gru_precision_choice_runs_and_leaves_the_model_unchanged() -> None:
    # the CUDA speed switch, exercised on the CPU (bf16 autocast): whichever variant wins, the
    # weights, batch-norm statistics and RNG state are as before
    from metashot.chem.train import _choose_gru_precision
    from metashot.chem.vae import SmilesVAE

    torch.manual_seed(0)
    model = SmilesVAE(12, preset("tiny").model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randint(0, 12, (4, model.config.max_length))
    rng = torch.get_rng_state()
    ok = _choose_gru_precision(model, x, torch.device("cpu"))
    assert isinstance(ok, bool) and isinstance(model.gru_in_fp32, bool)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("bucket", [False, True])
def test_batch_order_visits_every_molecule_once_and_buckets_by_length(bucket: bool) -> None:
    from metashot.chem.data import batch_order

    lengths = torch.randint(5, 120, (1000,), generator=torch.Generator().manual_seed(0))
    order = batch_order(lengths, 10, seed=3, bucket=bucket)
    assert sorted(order.tolist()) == list(range(1000))
    assert torch.equal(order, batch_order(lengths, 10, seed=3, bucket=bucket))  # deterministic: exact resume
    spread = (lengths[order].view(100, 10).max(1).values - lengths[order].view(100, 10).min(1).values).float().mean()
    # random batches of 10 span ~90 of the 115 possible lengths; sorted chunks of 64 batches ~2
    assert (spread < 10) if bucket else (spread > 50)


@pytest.mark.needs_shared_data
def test_budget_kl_schedule_follows_the_time_budget(tmp_path: Path, shared_data: Path) -> None:
    # 3 steps of a 10-minute budget: the weight is still ~0 (sigmoid at budget fraction ~0, midpoint
    # 0.4, slope 16 -> 0.0017 * kl_max), while the epoch schedule of the same config would not be
    cfg = preset("tiny", max_molecules=200, eval_every=1000, kl_schedule="budget", kl_midpoint=0.4, kl_slope=16.0)
    train(cfg, tmp_path / "run", data_dir=str(shared_data), device="cpu", max_steps=3, max_minutes=10,
          show_progress=False)
    weights = [r["kl_weight"] for r in map(json.loads, (tmp_path / "run" / "metrics.jsonl").read_text().splitlines())
               if "kl_weight" in r]
    assert weights and all(w < 0.01 for w in weights)
    with pytest.raises(UsageError, match="kl_schedule"):
        preset("tiny", kl_schedule="weekly")


@pytest.mark.needs_shared_data
def test_word_dropout_trains_and_resumes_exactly(tmp_path: Path, shared_data: Path) -> None:
    from metashot.training import load_checkpoint

    cfg = preset("tiny", max_molecules=300, eval_every=1000, checkpoint_every=2, word_dropout=0.5)
    straight = train(cfg, tmp_path / "a", data_dir=str(shared_data), device="cpu", max_steps=4, show_progress=False)
    train(cfg, tmp_path / "b", data_dir=str(shared_data), device="cpu", max_steps=2, show_progress=False)
    resumed = train(cfg, tmp_path / "b", data_dir=str(shared_data), device="cpu", max_steps=4, resume=True,
                    show_progress=False)
    assert straight.step == resumed.step == 4
    a, b = load_checkpoint(tmp_path / "a").tensors["model"], load_checkpoint(tmp_path / "b").tensors["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    train(preset("tiny", max_molecules=300, eval_every=1000), tmp_path / "c", data_dir=str(shared_data),
              device="cpu", max_steps=4, show_progress=False)
    c = load_checkpoint(tmp_path / "c").tensors["model"]
    assert not all(torch.equal(a[k], c[k]) for k in a)  # the mask did change training


@pytest.mark.needs_shared_data
def test_cosine_learning_rate_decay_is_applied_and_logged(tmp_path: Path, shared_data: Path, monkeypatch) -> None:
    import metashot.chem.train as chem_train

    monkeypatch.setattr(chem_train, "LOG_EVERY", 1)
    cfg = preset("tiny", max_molecules=64, batch_size=32, epochs=4.0, lr_decay_start=1.0, lr_final=0.1,
                 eval_every=1000, checkpoint_every=1000)
    train(cfg, tmp_path / "run", data_dir=str(shared_data), device="cpu", show_progress=False)
    records = [r for r in map(json.loads, (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) if "lr" in r]
    assert len(records) == 8  # 2 steps per epoch, 4 epochs
    rates = [r["lr"] for r in records]
    assert rates[:3] == [cfg.lr] * 3  # constant up to epoch 1 (steps at epochs 0, 0.5, 1)
    assert all(a > b for a, b in zip(rates[2:], rates[3:]))  # then decays
    assert rates[-1] == pytest.approx(cfg.lr * cosine_lr_factor(3.5, start=1.0, end=4.0, final=0.1))
    assert rates[-1] < 0.2 * cfg.lr


@pytest.mark.needs_shared_data
def test_budget_learning_rate_schedule_decays_over_the_time_budget(tmp_path: Path, shared_data: Path,
                                                                   monkeypatch) -> None:
    import metashot.chem.train as chem_train

    class FakeBudget:  # a 100-second budget whose clock advances 20 s per reading
        def __init__(self, minutes: float | None) -> None:
            self.seconds, self.calls = 100.0, 0

        def expired(self) -> bool:
            return False

        def elapsed(self) -> float:
            self.calls += 1
            return 20.0 * (self.calls - 1)

    monkeypatch.setattr(chem_train, "TimeBudget", FakeBudget)
    monkeypatch.setattr(chem_train, "LOG_EVERY", 1)
    cfg = preset("tiny", max_molecules=200, batch_size=32, lr_schedule="budget", lr_decay_start=0.5, lr_final=0.1,
                 eval_every=1000, checkpoint_every=1000)
    train(cfg, tmp_path / "run", data_dir=str(shared_data), device="cpu", max_steps=5, max_minutes=1.0,
          show_progress=False)
    rates = [r["lr"] for r in map(json.loads, (tmp_path / "run" / "metrics.jsonl").read_text().splitlines())
             if "lr" in r]
    expected = [cfg.lr * cosine_lr_factor(p, start=0.5, end=1.0, final=0.1) for p in (0.0, 0.2, 0.4, 0.6, 0.8)]
    assert rates == pytest.approx(expected)
    assert rates[:3] == [cfg.lr] * 3 and rates[3] > rates[4] > 0.1 * cfg.lr
    with pytest.raises(UsageError, match="fraction of --max-minutes"):
        preset("tiny", lr_schedule="budget", lr_decay_start=2.0)


@pytest.mark.needs_shared_data
def test_init_from_starts_a_new_run_from_exported_weights(tmp_path: Path, shared_data: Path) -> None:
    from metashot.chem.train import export_weights
    from metashot.training import load_checkpoint

    cfg = preset("tiny", max_molecules=200, eval_every=1000, checkpoint_every=1000)
    train(cfg, tmp_path / "a", data_dir=str(shared_data), device="cpu", max_steps=3, show_progress=False)
    export_weights(tmp_path / "a", tmp_path / "exported", dtype=torch.float32)
    # zero steps from the exported weights: the new run's checkpoint holds exactly those weights
    train(cfg, tmp_path / "b", data_dir=str(shared_data), device="cpu", max_steps=0, show_progress=False,
          init_from=tmp_path / "exported")
    a, b = load_checkpoint(tmp_path / "a").tensors["model"], load_checkpoint(tmp_path / "b").tensors["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    state = load_checkpoint(tmp_path / "b").state
    assert state["step"] == 0 and state["init_from"] == str(tmp_path / "exported")
    # and it trains on from there (fresh optimizer)
    train(cfg, tmp_path / "c", data_dir=str(shared_data), device="cpu", max_steps=2, show_progress=False,
          init_from=tmp_path / "exported")
    c = load_checkpoint(tmp_path / "c").tensors["model"]
    assert not all(torch.equal(a[k], c[k]) for k in a)
    bigger = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, latent_dim=16))
    with pytest.raises(UsageError, match="init-from"):
        train(bigger, tmp_path / "d", data_dir=str(shared_data), device="cpu", max_steps=1, show_progress=False,
              init_from=tmp_path / "exported")


@pytest.mark.needs_shared_data
def test_budget_learning_rate_schedule_needs_a_time_budget(tmp_path: Path, shared_data: Path) -> None:
    cfg = preset("tiny", max_molecules=200, lr_schedule="budget", lr_decay_start=0.5)
    with pytest.raises(UsageError, match="--max-minutes"):
        train(cfg, tmp_path / "run", data_dir=str(shared_data), device="cpu", max_steps=1, show_progress=False)


@pytest.mark.needs_shared_data
def test_training_only_the_encoder_leaves_every_decoder_weight_unchanged_and_resumes_exactly(
        tmp_path: Path, shared_data: Path) -> None:
    from metashot.chem.vae import SmilesVAE
    from metashot.training import load_checkpoint

    cfg = preset("tiny", max_molecules=300, eval_every=1000, checkpoint_every=2)
    train(cfg, tmp_path / "a", data_dir=str(shared_data), device="cpu", max_steps=3, show_progress=False)
    export_weights(tmp_path / "a", tmp_path / "exported", dtype=torch.float32)
    enc_cfg = dataclasses.replace(cfg, train_only="encoder")
    run = train(enc_cfg, tmp_path / "b", data_dir=str(shared_data), device="cpu", max_steps=4, show_progress=False,
                init_from=tmp_path / "exported")
    assert run.step == 4
    start, after = load_checkpoint(tmp_path / "a").tensors["model"], load_checkpoint(tmp_path / "b").tensors["model"]
    probe = SmilesVAE(40, cfg.model)
    decoder = {name for name, p in probe.named_parameters() if any(p is q for q in probe.decoder_parameters())}
    assert decoder and {k.split(".")[0] for k in decoder} == {"decoder_dense", "token_embedding", "gru", "to_logits"}
    assert all(torch.equal(start[k], after[k]) for k in decoder)
    assert not torch.equal(start["to_mu.weight"], after["to_mu.weight"])  # the encoder did train
    assert not torch.equal(start["property_head.0.weight"], after["property_head.0.weight"])
    # resuming an encoder-only run continues it exactly (its optimizer holds only the trainable weights)
    train(enc_cfg, tmp_path / "c", data_dir=str(shared_data), device="cpu", max_steps=2, show_progress=False,
          init_from=tmp_path / "exported")
    train(enc_cfg, tmp_path / "c", data_dir=str(shared_data), device="cpu", max_steps=4, resume=True,
          show_progress=False)
    resumed = load_checkpoint(tmp_path / "c").tensors["model"]
    assert all(torch.equal(after[k], resumed[k]) for k in after)
