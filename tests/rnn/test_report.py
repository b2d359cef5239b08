import pytest

from metashot.errors import CheckpointError
from metashot.report import ReportOptions
from metashot.rnn.config import ModelConfig, TaskConfig, TrainConfig
from metashot.rnn.evaluate import evaluate_checkpoint
from metashot.rnn.report import build_report
from metashot.rnn.train import train


def test_report_evaluates_checkpoints_like_the_cli_and_writes_figures(tmp_path):
    checkpoints = tmp_path / "checkpoints"
    for model in ("plstm", "lstm"):
        config = TrainConfig(task=TaskConfig(sampling="async"), model=ModelConfig(model=model, hidden_size=8),
                             epochs=2, epoch_size=16, batch_size=8, eval_examples=16)
        train(config, checkpoints / f"{model}-frequency-async", device="cpu", show_progress=False)
    scaled = TrainConfig(task=TaskConfig(sampling="async"), model=ModelConfig(model="lstm", hidden_size=8, time_input_scale=0.01),
                         epochs=1, epoch_size=16, batch_size=8, eval_examples=16)
    train(scaled, checkpoints / "lstm-frequency-async-timescale", device="cpu", show_progress=False)
    bn = TrainConfig(task=TaskConfig(sampling="async"), model=ModelConfig(model="bnlstm", hidden_size=8),
                     epochs=1, epoch_size=16, batch_size=8, eval_examples=16)
    train(bn, checkpoints / "bnlstm-frequency-async", device="cpu", show_progress=False)
    fixed = TrainConfig(task=TaskConfig(sampling="async"), model=ModelConfig(hidden_size=8, learn_r_on=False),
                        epochs=1, epoch_size=16, batch_size=8, eval_examples=16)
    train(fixed, checkpoints / "plstm-frequency-async-fixed-ron", device="cpu", show_progress=False)
    report = build_report(ReportOptions(out_dir=tmp_path / "out", quick=True, device="cpu", checkpoints_dir=checkpoints))
    assert report.system == "rnn" and len(report.claims) == 7
    assert all(f.path.is_file() and f.path.stat().st_size > 1000 for f in report.figures)
    cli = evaluate_checkpoint(checkpoints / "plstm-frequency-async", num_examples=250, seed=0, device="cpu")
    assert report.results["runs"]["plstm-async"]["accuracy"] == cli["accuracy"]
    assert "--examples 250 --seed 0" in report.claims[0].command
    assert any("ablation" in c.claim and c.status == "info" for c in report.claims)
    bn_rows = [c for c in report.claims if "BN-LSTM" in c.claim]  # a committed checkpoint, evaluated like the CLI
    assert len(bn_rows) == 1 and "asynchronous" in bn_rows[0].claim and "bnlstm-frequency-async" in bn_rows[0].command
    bn_cli = evaluate_checkpoint(checkpoints / "bnlstm-frequency-async", num_examples=250, seed=0, device="cpu")
    assert report.results["runs"]["bnlstm-async"]["accuracy"] == bn_cli["accuracy"]
    gate = next(c for c in report.claims if "gate is open" in c.claim)  # status from the paper's setting, r_on fixed
    assert "async-fixed-ron" in gate.command and "r_on fixed at 0.05" in gate.ours and "r_on learned" in gate.ours
    assert gate.ours_value == report.results["runs"]["plstm-async-fixed-ron"]["open_update_fraction"]


def test_report_names_the_training_command_when_a_checkpoint_is_missing(tmp_path):
    with pytest.raises(CheckpointError, match="metashot rnn train --task frequency --sampling async"):
        build_report(ReportOptions(out_dir=tmp_path, quick=True, device="cpu", checkpoints_dir=tmp_path / "none"))
