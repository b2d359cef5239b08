import json

import pytest
import torch

from metashot.cli import main
from metashot.rnn.config import ModelConfig, TaskConfig, TrainConfig
from metashot.rnn.evaluate import build_model, evaluate_checkpoint
from metashot.rnn.sequence_models import MODELS
from metashot.rnn.tasks import FrequencyTask
from metashot.rnn.train import train
from metashot.training import load_checkpoint

TINY = ["--epochs", "2", "--epoch-size", "16", "--batch-size", "8", "--hidden-size", "8", "--eval-examples", "16",
        "--device", "cpu", "--no-progress"]


def tiny_config(model: str = "plstm") -> TrainConfig:
    return TrainConfig(task=TaskConfig(name="frequency", sampling="async"), model=ModelConfig(model=model, hidden_size=8),
                       epochs=2, epoch_size=16, batch_size=8, eval_examples=16)


@pytest.mark.parametrize("model", list(MODELS))
def test_cli_train_then_evaluate_json_gives_an_accuracy_fraction(tmp_path, capsys, model):
    out = tmp_path / model
    assert main(["rnn", "train", "--task", "frequency", "--sampling", "async", "--model", model, "--out", str(out), *TINY]) == 0
    capsys.readouterr()
    assert main(["rnn", "evaluate", "--checkpoint", str(out), "--json", "--examples", "40", "--device", "cpu"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert 0.0 <= result["accuracy"] <= 1.0
    assert result["examples"] == 40 and result["model"] == model and result["sampling"] == "async"
    if model == "plstm":
        assert 0.0 < result["open_update_fraction"] < 1.0
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [0, 1, 2]


def test_cli_refuses_to_overwrite_a_run_without_resume(tmp_path, capsys):
    args = ["rnn", "train", "--out", str(tmp_path), "--max-steps", "1", *TINY]
    assert main(args) == 0
    assert main(args) == 2
    assert "--resume" in capsys.readouterr().err


def test_resume_is_exact(tmp_path):
    config = tiny_config()
    train(config, tmp_path / "straight", device="cpu", show_progress=False)
    train(config, tmp_path / "split", max_steps=3, device="cpu", show_progress=False)
    assert load_checkpoint(tmp_path / "split").step == 3
    train(config, tmp_path / "split", resume=True, device="cpu", show_progress=False)
    a = load_checkpoint(tmp_path / "straight").group("model")
    b = load_checkpoint(tmp_path / "split").group("model")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


def test_evaluate_is_deterministic_for_the_same_seed(tmp_path):
    train(tiny_config("lstm"), tmp_path, device="cpu", show_progress=False)
    first = evaluate_checkpoint(tmp_path, num_examples=30, device="cpu")
    assert evaluate_checkpoint(tmp_path, num_examples=30, device="cpu") == first


def test_phased_lstm_model_fits_a_small_batch():
    # Learning happens: 60 Adam steps on one fixed batch of 32 sequences must cut the loss well
    # below chance (ln 2 = 0.69); measured 0.02 with these seeds, so 0.5 leaves a wide margin.
    torch.manual_seed(0)
    config = TrainConfig(task=TaskConfig(sampling="standard"), model=ModelConfig(hidden_size=16, r_on=0.2))
    model = build_model(config)
    batch = FrequencyTask(sampling="standard").batch(32, torch.Generator().manual_seed(0))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(60):
        loss = torch.nn.functional.cross_entropy(model(*batch[:3]), batch.targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        model.constrain_()
    assert loss.item() < 0.5


def test_example_runs_in_quick_mode():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "rnn_frequency.py"
    spec = importlib.util.spec_from_file_location("rnn_frequency_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert 0.0 <= module.main(["--quick"]) <= 1.0


def test_speed_benchmark_runs_in_quick_mode(tmp_path):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "plstm_speed.py"
    spec = importlib.util.spec_from_file_location("plstm_speed", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "speed.json"
    assert module.main(["--quick", "--device", "cpu", "--backends", "eager", "--json-out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["length"] for r in rows] == [20, 50] and all(r["ratio_eager"] > 0 for r in rows)


def test_flags_override_config_file_which_overrides_preset(tmp_path):
    import argparse

    from metashot.rnn.cli import config_from_args, register

    (tmp_path / "run.json").write_text(json.dumps({"seed": 7, "epochs": 3, "model": {"hidden_size": 12}}))
    parser = argparse.ArgumentParser()
    register(parser)
    args = parser.parse_args(["train", "--preset", "frequency-cpu", "--config", str(tmp_path / "run.json"),
                              "--epochs", "5", "--out", str(tmp_path / "o")])
    config = config_from_args(args)
    assert (config.seed, config.epochs, config.model.hidden_size, config.epoch_size) == (7, 5, 12, 1600)


def test_fixed_r_on_trains_period_and_shift_but_keeps_the_open_ratio(tmp_path):
    args = ["rnn", "train", "--model", "plstm", "--fixed-r-on", "--r-on", "0.1", *TINY]
    assert main([*args, "--out", str(tmp_path / "one"), "--max-steps", "1"]) == 0
    assert main([*args, "--out", str(tmp_path / "four")]) == 0  # 2 epochs of 16 / 8 = 4 steps
    assert json.loads((tmp_path / "four" / "config.json").read_text())["model"]["learn_r_on"] is False
    one, four = (load_checkpoint(tmp_path / run).group("model") for run in ("one", "four"))
    for weights in (one, four):
        torch.testing.assert_close(weights["rnn.cells.0.r_on"], torch.full((8,), 0.1), rtol=0, atol=0)
    assert not torch.equal(one["rnn.cells.0.period"], four["rnn.cells.0.period"])
    assert not torch.equal(one["rnn.cells.0.shift"], four["rnn.cells.0.shift"])


def test_a_config_file_with_a_non_boolean_learn_r_on_is_refused(tmp_path, capsys):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model": {"learn_r_on": "no"}}))
    assert main(["rnn", "train", "--config", str(config), "--out", str(tmp_path / "run"), *TINY]) == 2
    assert "learn_r_on must be true or false" in capsys.readouterr().err
