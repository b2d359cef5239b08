"""End to end: `metashot optim meta-train` / `compare` / `tasks` in the issue's command forms."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from metashot.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "run"
    code = main(["optim", "meta-train", "--task", "quadratic", "--out", str(out), "--max-steps", "2",
                 "--no-progress", "--device", "cpu", "--num-val", "2"])
    assert code == 0
    return out


def test_meta_train_writes_a_resumable_run_with_a_selected_model(trained_run, capsys):
    assert (trained_run / "best" / "model.safetensors").is_file()
    assert (trained_run / "latest").is_file() and (trained_run / "metrics.jsonl").is_file()
    code = main(["optim", "meta-train", "--task", "quadratic", "--out", str(trained_run), "--resume",
                 "--max-steps", "3", "--no-progress", "--device", "cpu", "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["step"] == 3 and summary["config"]["unroll"] == 20


def test_meta_train_loss_weighting_flag_reaches_the_run_config(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["optim", "meta-train", "--task", "quadratic", "--out", str(out), "--max-steps", "1",
                 "--no-progress", "--device", "cpu", "--num-val", "1", "--loss-weighting", "linear", "--json"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["config"]["loss_weighting"] == "linear"
    assert json.loads((out / "config.json").read_text())["loss_weighting"] == "linear"


def test_compare_prints_the_documented_json_and_draws_the_plot(trained_run, tmp_path, capsys):
    plot = tmp_path / "fig.png"
    code = main(["optim", "compare", "--checkpoint", str(trained_run), "--task", "quadratic", "--steps", "5",
                 "--runs", "2", "--seed", "0", "--json", "--tune-runs", "1", "--lr-grid", "0.001,0.01",
                 "--plot", str(plot)])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["task"], result["steps"], result["runs"]) == ("quadratic", 5, 2)
    assert set(result["optimizers"]) == {"lstm", "adam", "rmsprop", "nag", "sgd"}
    for name, entry in result["optimizers"].items():
        assert len(entry["curve"]) == 6 and isinstance(entry["final_loss"], float), name
        assert entry["final_loss"] == pytest.approx(entry["curve"][-1])
    assert result["optimizers"]["adam"]["lr"] in (0.001, 0.01)
    assert 0 <= result["optimizers"]["adam"]["lstm_wins"] <= 2
    assert len(result["optimizers"]["lstm"]["final_losses"]) == 2
    lstm, adam = result["optimizers"]["lstm"]["final_losses"], result["optimizers"]["adam"]["final_losses"]
    paired = result["optimizers"]["adam"]["lstm_minus"]
    assert paired["mean"] == pytest.approx(((lstm[0] - adam[0]) + (lstm[1] - adam[1])) / 2)
    assert "measure" in result
    assert plot.stat().st_size > 1000


def test_compare_without_checkpoint_for_lstm_is_a_usage_error(capsys):
    assert main(["optim", "compare", "--task", "quadratic"]) == 2
    assert "--checkpoint DIR is needed" in capsys.readouterr().err


def test_compare_on_a_missing_checkpoint_names_the_problem(tmp_path, capsys):
    assert main(["optim", "compare", "--checkpoint", str(tmp_path / "nope"), "--task", "quadratic"]) == 1
    assert "no such checkpoint folder" in capsys.readouterr().err


def test_tasks_lists_the_families(capsys):
    assert main(["optim", "tasks"]) == 0
    assert "mnist-mlp-relu" in capsys.readouterr().out.split()


def test_example_runs_in_cheap_mode():
    spec = importlib.util.spec_from_file_location("optim_example", ROOT / "examples" / "optim_custom_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(["--cheap"])
    assert set(result) == {"learned_final", "adam_final"}


def test_report_names_the_fixing_command_when_a_checkpoint_is_missing(tmp_path):
    from metashot.errors import CheckpointError
    from metashot.optim.report import build_report
    from metashot.report import ReportOptions

    options = ReportOptions(out_dir=tmp_path / "report", quick=True, checkpoints_dir=tmp_path / "none")
    with pytest.raises(CheckpointError, match="metashot optim meta-train --task quadratic --out"):
        build_report(options)


def test_report_points_to_the_checkpoint_readme_for_how_it_was_trained(tmp_path):
    from metashot.errors import CheckpointError
    from metashot.optim.report import _load

    broken = tmp_path / "l2l-mnist-mlp-mixed-adam-second-order"
    broken.mkdir()
    (broken / "README.md").write_text("the exact meta-training commands")
    with pytest.raises(CheckpointError, match="Meta-train it: the commands in .*README.md"):
        _load(broken, "mnist-mlp-mixed")  # the task alone would give a log-sign, first-order optimizer


def test_report_claim_status_follows_the_papers_direction():
    from metashot.optim.report import EXPERIMENTS, _claim

    result = {"optimizers": {"lstm": {"final_loss": 0.5}, "adam": {"final_loss": 0.6}, "rmsprop": {"final_loss": 0.7},
                             "nag": {"final_loss": 0.8}, "sgd": {"final_loss": 0.9}}}
    by_key = {e.key: e for e in EXPERIMENTS}
    assert _claim(by_key["mnist-mlp"], result, "cmd").status == "met"
    assert _claim(by_key["mnist-mlp-relu"], result, "cmd").status == "info"
    result["optimizers"]["adam"]["final_loss"] = 0.25
    lost = _claim(by_key["mnist-mlp"], result, "cmd")
    assert lost.status == "not met" and lost.gap == "LSTM 2.00x the loss of adam"


def test_report_relu_tuned_claim_is_judged_against_every_baseline():
    from metashot.optim.report import _TRAINED_ON, EXPERIMENTS, _claim

    exp = {e.key: e for e in EXPERIMENTS}["mnist-mlp-relu-tuned"]
    assert exp.checkpoint == "l2l-mnist-mlp-relu" and _TRAINED_ON[exp.checkpoint] == "mnist-mlp-relu"
    result = {"optimizers": {"lstm": {"final_loss": 0.31}, "adam": {"final_loss": 0.335},
                             "rmsprop": {"final_loss": 0.358}, "nag": {"final_loss": 0.358}, "sgd": {"final_loss": 0.49}}}
    assert _claim(exp, result, "cmd").status == "met"
    result["optimizers"]["nag"]["final_loss"] = 0.30  # beating Adam alone is not enough here
    lost = _claim(exp, result, "cmd")
    assert lost.status == "not met" and "nag" in lost.gap


def test_report_adam_input_rows_load_the_committed_optimizer_and_name_its_training_task():
    from metashot.optim.report import _TRAINED_ON, EXPERIMENTS

    rows = [e for e in EXPERIMENTS if e.key.startswith("adam-inputs-")]
    assert {e.task for e in rows} == {"mnist-mlp", "mnist-mlp-wide", "mnist-mlp-deep", "mnist-mlp-relu"}
    assert {e.checkpoint for e in rows} == {"l2l-mnist-mlp-mixed-adam-second-order"}
    assert _TRAINED_ON["l2l-mnist-mlp-mixed-adam-second-order"] == "mnist-mlp-mixed"  # a real task, for the retrain hint
    from metashot.optim import CoordinatewiseLSTM

    net = CoordinatewiseLSTM.from_pretrained(ROOT / "checkpoints" / "l2l-mnist-mlp-mixed-adam-second-order")
    assert (net.config.preprocess, net.config.output_activation) == ("adam", "tanh")


def test_report_retrain_recipe_of_the_adam_input_optimizer_is_the_committed_run():
    import json

    from metashot.config import to_dict
    from metashot.optim.report import _retrain_recipes

    recipes = {name: (config, init) for name, config, init in _retrain_recipes()}
    config, init = recipes["l2l-mnist-mlp-mixed-adam-second-order"]
    committed = json.loads((ROOT / "checkpoints" / "l2l-mnist-mlp-mixed-adam-second-order" / "config.json").read_text())
    ours = to_dict(config)
    assert init is None  # one run from scratch, no fine-tune stage
    assert {k: v for k, v in ours.items() if k != "checkpoint_every"} == {
        k: v for k, v in committed.items() if k != "checkpoint_every"
    }
    assert recipes["l2l-mnist-mlp-relu"][0].task == "mnist-mlp-relu"
    assert recipes["l2l-mnist-mlp-relu"][1] == "l2l-mnist-mlp-mixed"  # the ReLU one is a fine-tune, as committed
