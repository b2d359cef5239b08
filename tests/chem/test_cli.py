"""`metashot chem ...` end to end with a tiny checkpoint, including bad-input handling."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import torch

from metashot.cli import main

pytestmark = pytest.mark.needs_shared_data


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:
    capsys.readouterr()
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_evaluate_json_has_the_issue_keys_as_fractions(tiny_run: Path, shared_data: Path, capsys) -> None:
    result = _json(capsys, ["chem", "evaluate", "--checkpoint", str(tiny_run), "--json", "--molecules", "10",
                            "--decodes", "2", "--prior-samples", "30", "--device", "cpu", "--data-dir", str(shared_data)])
    for key in ("reconstruction", "validity", "uniqueness", "novelty"):
        assert result[key] is None or 0.0 <= result[key] <= 1.0, key
    assert set(result["property_mae"]) == {"logP", "QED", "SAS"}
    assert result["protocol"]["held_out_molecules"] == 10 and result["protocol"]["prior_samples"] == 30


def test_sample_interpolate_perturb_write_json_and_images(tiny_run: Path, tmp_path: Path, capsys) -> None:
    ck = str(tiny_run)
    sample = _json(capsys, ["chem", "sample", "--checkpoint", ck, "-n", "20", "--seed", "0", "--json", "--device", "cpu"])
    assert len(sample["smiles"]) == 20 and 0 <= sample["validity"] <= 1
    grid = tmp_path / "grid.png"
    inter = _json(capsys, ["chem", "interpolate", "--checkpoint", ck, "CCO", "c1ccccc1", "--steps", "4",
                           "--image", str(grid), "--json", "--device", "cpu"])
    assert [round(r["t"], 3) for r in inter["path"]] == [0.0, 0.333, 0.667, 1.0]
    assert grid.read_bytes()[:4] == b"\x89PNG"
    pert = _json(capsys, ["chem", "perturb", "--checkpoint", ck, "CCO", "--radius", "0.5", "-n", "5",
                          "--decodes", "2", "--image", str(tmp_path / "p.png"), "--json", "--device", "cpu"])
    assert pert["input"] == "CCO"
    assert all(r["count"] >= 1 for r in pert["molecules"])


def test_constrained_evaluate_and_sample_say_so_in_their_protocol(tiny_run: Path, shared_data: Path, capsys) -> None:
    result = _json(capsys, ["chem", "evaluate", "--checkpoint", str(tiny_run), "--json", "--molecules", "5",
                            "--decodes", "1", "--prior-samples", "10", "--device", "cpu", "--constrained",
                            "--data-dir", str(shared_data)])
    assert result["protocol"]["decoding"] == "greedy, syntax-constrained"
    sample = _json(capsys, ["chem", "sample", "--checkpoint", str(tiny_run), "-n", "5", "--seed", "0", "--json",
                            "--device", "cpu", "--constrained"])
    assert sample["protocol"]["constrained"] is True and len(sample["smiles"]) == 5


def test_beam_search_evaluate_reports_both_pickings_and_the_validity_check_never_lowers_validity(
        tiny_run: Path, shared_data: Path, tmp_path: Path, capsys) -> None:
    decodes = tmp_path / "decodes.json.gz"
    result = _json(capsys, ["chem", "evaluate", "--checkpoint", str(tiny_run), "--json", "--molecules", "5",
                            "--decodes", "1", "--prior-samples", "12", "--device", "cpu", "--beam", "3",
                            "--save-decodes", str(decodes), "--data-dir", str(shared_data)])
    assert result["protocol"]["decoding"] == "beam search, width 3"
    saved = json.loads(gzip.decompress(decodes.read_bytes()))
    assert [len(c) for c in saved["prior_beams"]] == [3] * 12
    assert saved["prior"] == [c[0] for c in saved["prior_beams"]]  # the plain metrics use the best string
    checked = result["with_validity_check"]
    assert checked["validity"] >= result["validity"]
    rescored = _json(capsys, ["chem", "evaluate", "--checkpoint", str(tiny_run), "--json", "--from-decodes",
                              str(decodes), "--data-dir", str(shared_data)])
    assert rescored["with_validity_check"] == checked
    truncated = tmp_path / "truncated.json.gz"
    truncated.write_bytes(decodes.read_bytes()[:-20])
    assert main(["chem", "evaluate", "--checkpoint", str(tiny_run), "--from-decodes", str(truncated),
                 "--data-dir", str(shared_data)]) != 0
    assert "cannot read saved decodes" in capsys.readouterr().err
    misnamed = tmp_path / "compressed-but-named.json"  # gzip bytes under a .json name
    misnamed.write_bytes(decodes.read_bytes())
    assert main(["chem", "evaluate", "--checkpoint", str(tiny_run), "--from-decodes", str(misnamed),
                 "--data-dir", str(shared_data)]) != 0
    assert "cannot read saved decodes" in capsys.readouterr().err
    ck = ["--checkpoint", str(tiny_run), "-n", "8", "--seed", "0", "--json", "--device", "cpu", "--beam", "3"]
    best = _json(capsys, ["chem", "sample", *ck])
    valid = _json(capsys, ["chem", "sample", *ck, "--check-validity"])
    assert valid["validity"] >= best["validity"] and valid["protocol"]["check_validity"] is True


def test_optimize_with_a_validity_checked_beam_decodes_at_least_as_many_molecules(tiny_run: Path, shared_data: Path,
                                                                                   capsys) -> None:
    argv = ["chem", "optimize", "--checkpoint", str(tiny_run), "--method", "random", "--iterations", "3",
            "--batch", "4", "--initial", "10", "--json", "--device", "cpu", "--data-dir", str(shared_data),
            "--beam", "3"]
    best = _json(capsys, argv)
    checked = _json(capsys, [*argv, "--check-validity"])  # same prior samples: random search draws them first
    assert best["protocol"]["decoding"] == "beam search, width 3"
    assert checked["protocol"]["decoding"] == "beam search, width 3, most probable valid candidate"
    assert checked["evaluated"] == best["evaluated"] == 12 and checked["valid"] >= best["valid"]


def test_check_validity_without_a_beam_is_a_usage_error(tiny_run: Path, capsys) -> None:
    assert main(["chem", "sample", "--checkpoint", str(tiny_run), "-n", "2", "--check-validity", "--device", "cpu"]) == 2
    assert "give --beam K" in capsys.readouterr().err
    assert main(["chem", "sample", "--checkpoint", str(tiny_run), "-n", "2", "--beam", "3", "--temperature", "1",
                 "--device", "cpu"]) == 2
    assert "temperature 0" in capsys.readouterr().err


@pytest.mark.parametrize("method", ["bo", "bo-trust", "gradient"])
def test_optimize_returns_best_molecules_with_properties(tiny_run: Path, shared_data: Path, method: str, capsys) -> None:
    result = _json(capsys, ["chem", "optimize", "--checkpoint", str(tiny_run), "--objective", "qed-sas",
                            "--iterations", "2", "--batch", "3", "--initial", "20", "--method", method, "--json",
                            "--device", "cpu", "--data-dir", str(shared_data)])
    assert len(result["history"]) == 3
    assert result["history"] == sorted(result["history"])
    assert result["best"] and {"smiles", "score", "QED", "SAS", "logP"} <= set(result["best"][0])


def test_bo_is_reproducible_from_its_seed_whatever_the_global_rng(tiny_run: Path, shared_data: Path,
                                                                          capsys) -> None:
    argv = ["chem", "optimize", "--checkpoint", str(tiny_run), "--objective", "qed-sas", "--iterations", "2",
            "--batch", "3", "--initial", "20", "--method", "bo", "--seed", "5", "--json", "--device", "cpu",
            "--data-dir", str(shared_data)]
    torch.manual_seed(123)
    first = _json(capsys, argv)
    torch.manual_seed(999)  # GP fitting and acquisition restarts must not depend on the global RNG
    second = _json(capsys, argv)
    assert first["history"] == second["history"] and first["best"] == second["best"]


@pytest.mark.parametrize(
    ("smiles", "reason"),
    [
        ("C1CC", "invalid SMILES 'C1CC'"),
        ("", "empty SMILES"),
        ("CC[Xe]", "token 'X' at index 3 is not in the model's vocabulary"),
        ("C" * 130, "has 130 tokens; the model allows at most 120"),
    ],
)
def test_bad_input_prints_one_line_naming_the_input_and_exits_2(tiny_run: Path, smiles: str, reason: str,
                                                                capfd) -> None:
    capfd.readouterr()
    code = main(["chem", "interpolate", "--checkpoint", str(tiny_run), smiles, "CCO", "--device", "cpu"])
    err = capfd.readouterr().err  # file-descriptor level: RDKit's own logging would show up here
    assert code == 2
    assert reason in err and err.count("\n") == 1


def test_missing_checkpoint_is_a_clear_error(tmp_path: Path, capsys) -> None:
    assert main(["chem", "sample", "--checkpoint", str(tmp_path / "nope"), "-n", "2"]) == 1
    assert "no such checkpoint folder" in capsys.readouterr().err


def test_encode_reports_bad_molecules_of_a_batch_and_carries_on(tiny_run: Path, tmp_path: Path, capsys) -> None:
    path = tmp_path / "mols.smi"
    path.write_text("CCO\nC1CC\n\nc1ccccc1\nCC[Xe]\n")
    result = _json(capsys, ["chem", "encode", "--checkpoint", str(tiny_run), "--input", str(path), "--json",
                            "--device", "cpu"])
    assert [m["smiles"] for m in result["molecules"]] == ["CCO", "c1ccccc1"]
    assert set(result["molecules"][0]["predicted"]) == {"logP", "QED", "SAS"}
    assert [(b["index"], b["smiles"]) for b in result["rejected"]] == [(1, "C1CC"), (2, ""), (4, "CC[Xe]")]


def test_refined_encodings_are_said_in_every_output_and_lower_the_elbo(tiny_run: Path, shared_data: Path,
                                                                       capsys) -> None:
    ck = ["--checkpoint", str(tiny_run), "--device", "cpu", "--json"]
    result = _json(capsys, ["chem", "evaluate", *ck, "--molecules", "6", "--decodes", "1", "--prior-samples", "4",
                            "--data-dir", str(shared_data), "--refine-steps", "5"])
    assert result["protocol"]["encoding"].startswith("encoder, then 5 Adam steps (lr 0.05)")
    before, after = result["protocol"]["elbo_loss_before_after"]
    assert after <= before
    assert set(result["property_mae_refined"]) == {"logP", "QED", "SAS"}
    plain = _json(capsys, ["chem", "evaluate", *ck, "--molecules", "6", "--decodes", "1", "--prior-samples", "4",
                           "--data-dir", str(shared_data)])
    assert "encoding" not in plain["protocol"] and plain["property_mae"] == result["property_mae"]  # from the encoder
    enc = _json(capsys, ["chem", "encode", *ck, "CCO", "--refine-steps", "3", "--latent"])
    raw = _json(capsys, ["chem", "encode", *ck, "CCO", "--latent"])
    assert enc["encoding"].startswith("encoder, then 3 Adam steps") and raw["encoding"] == "encoder"
    assert enc["molecules"][0]["predicted"] == raw["molecules"][0]["predicted"]  # properties: the encoder's mean
    assert len(enc["molecules"][0]["mu"]) == len(raw["molecules"][0]["mu"]) > 0
    inter = _json(capsys, ["chem", "interpolate", *ck, "CCO", "c1ccccc1", "--steps", "3", "--refine-steps", "2"])
    pert = _json(capsys, ["chem", "perturb", *ck, "CCO", "-n", "2", "--decodes", "1", "--refine-steps", "2"])
    assert inter["encoding"] == pert["encoding"] != "encoder"
    opt = _json(capsys, ["chem", "optimize", *ck, "--method", "random", "--iterations", "1", "--batch", "2",
                         "--initial", "5", "--data-dir", str(shared_data), "--refine-steps", "2"])
    assert opt["protocol"]["encoding"] == inter["encoding"]


@pytest.mark.parametrize("flags", [["--refine-steps", "-1"], ["--refine-steps", "2", "--refine-lr", "0"]])
def test_bad_refinement_settings_are_usage_errors(tiny_run: Path, flags: list[str], capsys) -> None:
    assert main(["chem", "encode", "--checkpoint", str(tiny_run), "CCO", "--device", "cpu", *flags]) == 2
    assert "--refine-steps must be >= 0 and --refine-lr > 0" in capsys.readouterr().err
