"""Encoder normalisation: per-molecule (layer) norm is batch-independent; batch-norm statistics are
recomputed for evaluation ("precise BN") on a copy, without touching the training model."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from metashot.chem.config import PRESETS, VAEConfig
from metashot.chem.train import RECALIBRATION_BATCHES, for_evaluation
from metashot.chem.vae import SmilesVAE
from metashot.errors import UsageError


def _vae(norm: str) -> SmilesVAE:
    torch.manual_seed(0)
    return SmilesVAE(12, replace(PRESETS["tiny"].model, encoder_norm=norm))


def _molecules(n: int, length: int, generator: torch.Generator) -> torch.Tensor:
    """``(n, 120)`` ids: ``length`` random tokens (2..11), then padding (0)."""
    ids = torch.zeros(n, 120, dtype=torch.long)
    ids[:, :length] = torch.randint(2, 12, (n, length), generator=generator)
    return ids


def test_layer_norm_encoding_does_not_depend_on_the_batch_or_the_mode() -> None:
    vae = _vae("layer")
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in vae.modules())
    g = torch.Generator().manual_seed(1)
    short, long = _molecules(8, 10, g), _molecules(8, 60, g)
    vae.train()
    alone = vae.encode(short)[0]
    mixed = vae.encode(torch.cat([short, long]))[0][:8]
    torch.testing.assert_close(alone, mixed)
    vae.eval()
    torch.testing.assert_close(vae.encode(short)[0], alone)
    assert for_evaluation(vae, short) is vae  # nothing to recalibrate


def test_batch_norm_depends_on_the_batch_which_is_why_buckets_hurt() -> None:
    vae = _vae("batch").train()
    g = torch.Generator().manual_seed(1)
    short, long = _molecules(8, 10, g), _molecules(8, 60, g)
    alone = vae.encode(short)[0]
    mixed = vae.encode(torch.cat([short, long]))[0][:8]
    assert (alone - mixed).abs().max() > 1e-2


def test_precise_batch_norm_recomputes_statistics_on_a_copy() -> None:
    vae = _vae("batch")
    g = torch.Generator().manual_seed(2)
    train_ids = torch.cat([_molecules(300, 10, g), _molecules(300, 70, g)]).to(torch.uint8)
    vae.train()
    with torch.no_grad():
        for _ in range(3):  # momentum statistics from short molecules only (one "bucket")
            vae.encode(train_ids[:256].long())
    before = {k: v.clone() for k, v in vae.state_dict().items()}
    evaluated = for_evaluation(vae, train_ids)
    assert evaluated is not vae and not evaluated.training
    for key, value in vae.state_dict().items():  # the training model is untouched
        assert torch.equal(value, before[key]), key
    first_bn = next(m for m in evaluated.convs if isinstance(m, torch.nn.BatchNorm1d))
    assert int(first_bn.num_batches_tracked) == RECALIBRATION_BATCHES
    # the recomputed means describe the whole training set: close to one big batch's statistics
    with torch.no_grad():
        conv_out = evaluated.convs[1](evaluated.convs[0](torch.nn.functional.one_hot(
            train_ids.long(), 12).float().transpose(1, 2)))
    torch.testing.assert_close(first_bn.running_mean, conv_out.mean(dim=(0, 2)), atol=0.02, rtol=0)
    stale = next(m for m in vae.convs if isinstance(m, torch.nn.BatchNorm1d))
    assert (stale.running_mean - conv_out.mean(dim=(0, 2))).abs().max() > 0.05
    # deterministic: the same statistics every time (fixed seed)
    again = for_evaluation(vae, train_ids)
    assert torch.equal(again.convs[2].running_var, first_bn.running_var)


def test_unknown_encoder_norm_is_refused() -> None:
    with pytest.raises(UsageError, match="encoder_norm"):
        VAEConfig(encoder_norm="group")


@pytest.mark.needs_shared_data
def test_cli_trains_a_layer_norm_encoder_and_reloads_it(tmp_path, shared_data) -> None:
    from metashot.chem.train import load_model
    from metashot.cli import main

    run = tmp_path / "run"
    assert main(["chem", "train", "--preset", "tiny", "--max-molecules", "200", "--max-steps", "2",
                 "--encoder-norm", "layer", "--out", str(run), "--no-progress", "--device", "cpu",
                 "--data-dir", str(shared_data)]) == 0
    model, _, cfg = load_model(run)
    assert cfg.model.encoder_norm == "layer"
    assert any(isinstance(m, torch.nn.LayerNorm) for m in model.modules())
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())


def test_molecule_token_accuracy_counts_tokens_and_end_marker_not_padding() -> None:
    from metashot.chem.train import _eval_counts, _eval_record

    vae = _vae("layer")
    g = torch.Generator().manual_seed(3)
    ids = _molecules(4, 10, g)
    (correct, total, correct_mol, total_mol, exact), mae = _eval_counts(vae, ids, None, torch.device("cpu"), 2)
    assert total == 4 * 120 and total_mol == 4 * 11  # 10 tokens + the end marker per molecule
    assert 0 <= correct_mol <= total_mol and 0 <= exact <= 4
    record = _eval_record((correct, total, correct_mol, total_mol, exact), mae, 4, False)
    assert record["test_molecule_token_accuracy"] == correct_mol / total_mol
    assert record["test_token_accuracy"] == correct / total
