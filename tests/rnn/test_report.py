import json

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


def test_adding_task_claims_compare_steps_to_a_held_out_mse(tmp_path):
    checkpoints = tmp_path / "checkpoints"
    for model in ("plstm", "lstm"):  # the frequency checkpoints every report needs, then the adding-task ones
        frequency = TrainConfig(task=TaskConfig(sampling="async"), model=ModelConfig(model=model, hidden_size=4),
                                epochs=1, epoch_size=8, batch_size=8, eval_examples=8)
        train(frequency, checkpoints / f"{model}-frequency-async", device="cpu", show_progress=False)
        adding = TrainConfig(task=TaskConfig(name="adding", min_length=4, max_length=6),
                             model=ModelConfig(model=model, hidden_size=4), epochs=2, epoch_size=16, batch_size=8,
                             eval_examples=8)
        train(adding, checkpoints / f"{model}-adding", device="cpu", show_progress=False)
    # records at steps 0, 2, 4: the Phased LSTM crosses MSE 0.1 at step 4, the LSTM never
    for model, losses in (("plstm", [0.2, 0.05]), ("lstm", [0.2, 0.15])):
        path = checkpoints / f"{model}-adding" / "metrics.jsonl"
        records = [json.loads(line) for line in path.read_text().splitlines()]
        for record, loss in zip(records[1:], losses):
            record["test_loss"] = loss
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    report = build_report(ReportOptions(out_dir=tmp_path / "out", quick=True, device="cpu", checkpoints_dir=checkpoints))
    faster = next(c for c in report.claims if "converges faster (training steps" in c.claim)
    assert faster.status == "met" and faster.ours == "Phased LSTM 4 steps vs LSTM not within 4 steps"
    assert {"plstm-adding", "lstm-adding"} <= set(report.results["runs"])
