"""``metashot fewshot train | evaluate | predict`` end to end, in the issue's exact command forms."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from metashot.cli import main
from metashot.training import load_checkpoint

pytestmark = pytest.mark.needs_shared_data


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def trained(tmp_path_factory, shared_data) -> str:
    out = tmp_path_factory.mktemp("fewshot") / "run"
    code = main(
        ["fewshot", "train", "--method", "matching", "--fce", "--dataset", "omniglot", "--way", "5", "--shot", "1",
         "--out", str(out), "--max-steps", "2", "--no-progress", "--device", "cpu", "--read-steps", "2"]
    )
    assert code == 0
    return str(out)


def test_train_writes_a_resumable_checkpoint_with_config_and_metrics(trained):
    ckpt = load_checkpoint(trained)
    assert ckpt.step == 2
    assert ckpt.config["model"]["full_context"] is True and ckpt.config["episodes"]["n_way"] == 5
    assert {"model", "optimizer", "rng"} <= set(ckpt.tensors)


@pytest.mark.parametrize("method", ["protonet", "baseline"])
def test_train_other_methods_runs_two_steps(capsys, tmp_path, method):
    code, out, _ = _run(capsys, "fewshot", "train", "--method", method, "--dataset", "omniglot", "--way", "5", "--shot", "1",
                        "--out", str(tmp_path / method), "--max-steps", "2", "--no-progress", "--json", "--batch-size", "16")
    assert code == 0
    assert json.loads(out)["step"] == 2


def test_train_refuses_to_overwrite_without_resume(capsys, trained):
    code, _, err = _run(capsys, "fewshot", "train", "--method", "matching", "--fce", "--dataset", "omniglot", "--way", "5",
                        "--shot", "1", "--out", trained, "--max-steps", "2", "--no-progress")
    assert code == 2 and "pass --resume" in err


def test_resume_is_exact(tmp_path, shared_data):
    common = ["fewshot", "train", "--method", "protonet", "--way", "3", "--shot", "1", "--query", "2", "--no-progress",
              "--device", "cpu", "--checkpoint-every", "100", "--log-every", "1"]
    assert main([*common, "--out", str(tmp_path / "straight"), "--max-steps", "4"]) == 0
    assert main([*common, "--out", str(tmp_path / "resumed"), "--max-steps", "2"]) == 0
    assert main([*common, "--out", str(tmp_path / "resumed"), "--max-steps", "4", "--resume"]) == 0
    a, b = load_checkpoint(tmp_path / "straight"), load_checkpoint(tmp_path / "resumed")
    assert a.step == b.step == 4
    for key, value in a.group("model").items():
        assert torch.equal(value, b.group("model")[key]), key
    lines = (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 2, 3, 4]


def test_evaluate_prints_the_issue_json(capsys, trained):
    code, out, _ = _run(capsys, "fewshot", "evaluate", "--checkpoint", trained, "--way", "5", "--shot", "1",
                        "--episodes", "20", "--seed", "0", "--json")
    assert code == 0
    result = json.loads(out)
    assert {"accuracy", "ci95", "way", "shot", "episodes"} <= set(result)
    assert (result["way"], result["shot"], result["episodes"]) == (5, 1, 20)
    assert 0.0 <= result["accuracy"] <= 1.0 and 0.0 <= result["ci95"] <= 1.0
    # fixed seeded episodes: the same command gives the same number
    _, again, _ = _run(capsys, "fewshot", "evaluate", "--checkpoint", trained, "--way", "5", "--shot", "1",
                       "--episodes", "20", "--seed", "0", "--json")
    assert json.loads(again)["accuracy"] == result["accuracy"]


def test_evaluate_pixels_needs_no_checkpoint(capsys):
    code, out, _ = _run(capsys, "fewshot", "evaluate", "--method", "pixels", "--way", "5", "--shot", "1",
                        "--episodes", "30", "--seed", "0", "--json")
    assert code == 0
    result = json.loads(out)
    assert result["method"] == "pixels" and 0.3 < result["accuracy"] < 0.8  # chance 0.2; paper 41.7%


def test_evaluate_reports_impossible_episodes_and_missing_checkpoints(capsys, tmp_path):
    code, _, err = _run(capsys, "fewshot", "evaluate", "--method", "pixels", "--way", "5", "--shot", "10",
                        "--query", "15", "--episodes", "5")
    assert code == 2 and "has 20 images but n_shot + n_query = 25 (10 + 15)" in err
    code, _, err = _run(capsys, "fewshot", "evaluate", "--checkpoint", str(tmp_path / "none"), "--way", "5", "--shot", "1")
    assert code == 1 and "no such checkpoint folder" in err


# --- predict ---------------------------------------------------------------------------------------


def _draw(path, kind: str, size=64, colour=False, background=255):
    """A simple glyph: dark strokes on a light background (as drawn on paper), any size."""
    image = np.full((size, size), background, np.uint8)
    ink = 255 - background
    s = size // 4
    if kind == "bar":
        image[s : 3 * s, size // 2 - 3 : size // 2 + 3] = ink
    elif kind == "cross":
        image[s : 3 * s, size // 2 - 3 : size // 2 + 3] = ink
        image[size // 2 - 3 : size // 2 + 3, s : 3 * s] = ink
    else:  # box
        image[s : 3 * s, s : s + 5] = ink
        image[s : 3 * s, 3 * s - 5 : 3 * s] = ink
        image[s : s + 5, s : 3 * s] = ink
        image[3 * s - 5 : 3 * s, s : 3 * s] = ink
    img = Image.fromarray(image)
    if colour:
        img = img.convert("RGB")
    img.save(path)


@pytest.fixture()
def folders(tmp_path):
    support, query = tmp_path / "support", tmp_path / "query"
    for kind in ("bar", "cross", "box"):
        (support / kind).mkdir(parents=True)
        _draw(support / kind / "a.png", kind)
    query.mkdir()
    _draw(query / "q_bar.png", "bar", size=100, colour=True)
    _draw(query / "q_box.jpg", "box", size=40)
    return support, query


def test_predict_prints_each_query_file_with_a_class_and_probability(capsys, trained, folders):
    support, query = folders
    code, out, _ = _run(capsys, "fewshot", "predict", "--checkpoint", trained, "--support", str(support),
                        "--query", str(query), "--json")
    assert code == 0
    result = json.loads(out)
    files = [p["file"].rsplit("/", 1)[-1] for p in result["predictions"]]
    assert files == ["q_bar.png", "q_box.jpg"]
    for p in result["predictions"]:
        assert p["class"] in {"bar", "cross", "box"} and 0.0 <= p["probability"] <= 1.0
        assert sum(p["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    code, out, _ = _run(capsys, "fewshot", "predict", "--checkpoint", trained, "--support", str(support), "--query", str(query))
    assert code == 0 and len(out.strip().splitlines()) == 2


def test_predict_names_the_bad_file(capsys, trained, folders):
    support, query = folders
    base = ["fewshot", "predict", "--checkpoint", trained, "--support", str(support), "--query", str(query)]
    (query / "notes.txt").write_text("not an image")
    code, _, err = _run(capsys, *base)
    assert code == 2 and "notes.txt: not an image file" in err
    (query / "notes.txt").unlink()
    (query / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    code, _, err = _run(capsys, *base)
    assert code == 2 and "broken.png: unreadable image" in err
    (query / "broken.png").unlink()
    (support / "empty").mkdir()
    code, _, err = _run(capsys, *base)
    assert code == 2 and "support class 'empty'" in err and "has no images" in err


def test_predict_rejects_an_empty_query_folder(capsys, trained, folders, tmp_path):
    support, _ = folders
    (tmp_path / "nothing").mkdir()
    code, _, err = _run(capsys, "fewshot", "predict", "--checkpoint", trained, "--support", str(support),
                        "--query", str(tmp_path / "nothing"))
    assert code == 2 and "no image files" in err


def test_resume_with_different_options_is_refused_naming_the_difference(capsys, tmp_path):
    common = ["fewshot", "train", "--method", "protonet", "--way", "3", "--shot", "1", "--query", "2", "--no-progress",
              "--out", str(tmp_path / "run"), "--max-steps", "1"]
    assert main(common) == 0
    code, _, err = _run(capsys, *common[:-2], "--max-steps", "2", "--resume", "--lr", "0.01")
    assert code == 1 and "cannot resume with a different config (lr: saved 0.001, now 0.01)" in err
