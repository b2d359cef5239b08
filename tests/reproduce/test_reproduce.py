"""`metashot reproduce` with fake systems: files written, claims kept exactly, missing/failed
systems reported instead of crashing, exit codes, `--systems` validation."""

from __future__ import annotations

import importlib.util
import inspect
import json
import re
from pathlib import Path

import pytest

from metashot.cli import main
from metashot.errors import UsageError
from metashot.report import ReportOptions
from metashot.reproduce import SYSTEM_NAMES, ReproduceOptions, exit_code, parse_systems, run_all, write_report
from metashot.reproduce.render import fix_command, to_jsonable
from tests.reproduce.fake_systems import FIX_CHECKPOINT, FIX_DATA, good_report


def reproduce(out: Path, *extra: str) -> int:
    return main(["reproduce", "--out", str(out), "--no-progress", "--device", "cpu", *extra])


def load_results(out: Path) -> dict:
    return json.loads((out / "results.json").read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------- files and claims


def test_reproduce_writes_html_markdown_and_json_with_every_claim(tmp_path, fake_systems, capsys):
    fake_systems(fewshot="good", optim="good", chem="good", rnn="good")
    assert reproduce(tmp_path / "r", "--quick", "--seed", "3") == 0
    out = tmp_path / "r"
    for name in ("index.html", "report.md", "results.json"):
        assert (out / name).stat().st_size > 0
    data = load_results(out)
    assert list(data["systems"]) == list(SYSTEM_NAMES)
    assert data["metadata"]["quick"] is True and data["metadata"]["seed"] == 3
    assert data["metadata"]["command"] == f"metashot reproduce --out {out} --quick --seed 3 --device cpu"
    assert data["metadata"]["torch_version"] and data["metadata"]["device"].startswith("cpu")
    for system, entry in data["systems"].items():
        assert entry["status"] == "ok"
        assert [c["claim"] for c in entry["claims"]] == [f"{system} accuracy", f"{system} | speed-up (quick=True)"]
        assert entry["counts"] == {"met": 1, "not met": 1, "info": 0, "missing": 0}
        assert [f["path"] for f in entry["figures"]] == [f"{system}/curve.png", f"{system}/grid.png"]
        assert all((out / f["path"]).is_file() for f in entry["figures"])
        assert entry["results"]["nan_value"] is None  # strict JSON
        assert entry["claims"][0]["command"].endswith("--seed 3")  # options reached the system
    assert set(data["metadata"]["wall_seconds"]) == set(SYSTEM_NAMES)
    printed = capsys.readouterr().out
    assert "report: " in printed and "1 met, 1 not met" in printed


def test_results_json_values_equal_the_values_build_report_returned(tmp_path, fake_systems):
    fake_systems(rnn="good")
    assert reproduce(tmp_path, "--systems", "rnn", "--seed", "7") == 0
    expected = good_report("rnn")(ReportOptions(out_dir=tmp_path / "expected", seed=7, quick=False))
    entry = load_results(tmp_path)["systems"]["rnn"]
    for got, want in zip(entry["claims"], expected.claims, strict=True):
        for key in ("claim", "paper", "ours", "command", "status", "gap", "paper_value", "ours_value", "ci95"):
            assert got[key] == getattr(want, key), key  # exact: 0.30700000000000005 stays itself
    assert entry["results"]["accuracy"] == expected.results["accuracy"]
    assert entry["results"]["per_seed"] == expected.results["per_seed"]


def test_html_shows_each_claim_text_and_value_and_is_self_contained(tmp_path, fake_systems):
    fake_systems(optim="good")
    assert reproduce(tmp_path, "--systems", "optim", "--quick") == 0
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    claim = load_results(tmp_path)["systems"]["optim"]["claims"][0]
    assert claim["ours"] in page and f"{claim['ours_value']:.6g}" in page
    assert "optim | speed-up" in page and "-0.5x" in page and "metashot optim compare --seed 0" in page
    assert "QUICK RUN" in page
    srcs = re.findall(r'src="([^"]*)"', page)
    assert len(srcs) == 2 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert not re.search(r"(src|href)=\"(https?:)?//", page)  # nothing fetched from the network
    assert "<script" not in page


def test_quick_banner_only_on_quick_runs(tmp_path, fake_systems):
    fake_systems(rnn="good")
    assert reproduce(tmp_path, "--systems", "rnn") == 0
    assert "QUICK RUN" not in (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "QUICK RUN" not in (tmp_path / "report.md").read_text(encoding="utf-8")


def test_markdown_has_the_tables_and_links_figures_as_relative_files(tmp_path, fake_systems):
    fake_systems(fewshot="good", rnn="good")
    assert reproduce(tmp_path, "--systems", "fewshot,rnn", "--quick") == 0
    text = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "**QUICK RUN**" in text
    assert "| claim | paper | ours | command | status |" in text
    assert "fewshot \\| speed-up" in text  # pipes in cells are escaped
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert links == ["fewshot/curve.png", "fewshot/grid.png", "rnn/curve.png", "rnn/grid.png"]
    assert all((tmp_path / link).is_file() for link in links)


# ---------------------------------------------------------------------------- missing and failed


def test_missing_systems_are_reported_with_their_fix_command_not_a_crash(tmp_path, fake_systems):
    fake_systems(fewshot="data", optim="absent", chem="good", rnn="checkpoint")
    assert reproduce(tmp_path, "--quick") == 0
    systems = load_results(tmp_path)["systems"]
    assert systems["fewshot"]["status"] == "missing" and systems["fewshot"]["fix"] == FIX_DATA
    assert systems["rnn"]["status"] == "missing" and systems["rnn"]["fix"] == FIX_CHECKPOINT
    assert systems["optim"]["status"] == "missing"
    assert "metashot.optim.report is not part of this install" in systems["optim"]["message"]
    assert systems["chem"]["status"] == "ok"
    assert not (tmp_path / "optim").exists()  # no empty folders for systems that wrote nothing
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    for fix in (FIX_DATA, FIX_CHECKPOINT):
        assert f"Fix: <code>{fix}</code>" in page
        assert f"Fix: `{fix}`" in md


def test_a_failing_system_is_reported_with_its_error_and_the_others_still_run(tmp_path, fake_systems):
    fake_systems(fewshot="bug", optim="good")
    assert reproduce(tmp_path, "--systems", "fewshot,optim") == 0
    systems = load_results(tmp_path)["systems"]
    assert systems["fewshot"]["status"] == "failed"
    assert systems["fewshot"]["message"] == "ZeroDivisionError: division by zero in fake system"
    assert "Traceback" in systems["fewshot"]["traceback"]
    assert systems["optim"]["status"] == "ok"
    assert "Failed.</b> ZeroDivisionError" in (tmp_path / "index.html").read_text(encoding="utf-8")


def test_exit_code_is_one_only_when_no_system_produced_a_report(tmp_path, fake_systems):
    fake_systems(fewshot="bug", optim="data", chem="absent", rnn="bug")
    assert reproduce(tmp_path) == 1
    assert (tmp_path / "index.html").exists()  # the report still says what went wrong


def test_dependency_missing_inside_a_system_names_the_extra_to_install(tmp_path):
    def loader(system):
        raise ModuleNotFoundError("No module named 'rdkit'", name="rdkit")

    options = ReproduceOptions(out_dir=tmp_path, systems=["chem"], progress=False)
    (outcome,) = run_all(options, loader=loader)
    assert outcome.status == "missing"
    assert fix_command(outcome.message) == "pip install -e '.[chem]'"


def test_a_system_returning_the_wrong_type_is_failed():
    def loader(system):
        return lambda options: {"accuracy": 0.9}

    (outcome,) = run_all(ReproduceOptions(out_dir=Path("/tmp/unused-reproduce"), systems=["rnn"], progress=False),
                         loader=loader)
    assert outcome.status == "failed" and "expected metashot.report.SystemReport" in outcome.message
    assert exit_code([outcome]) == 1


def test_report_is_written_before_and_after_each_system(tmp_path, fake_systems):
    fake_systems(fewshot="good", rnn="good")
    seen = []
    options = ReproduceOptions(out_dir=tmp_path, systems=["fewshot", "rnn"], progress=False)
    run_all(options, on_update=lambda outcomes: seen.append([o.status for o in outcomes]))
    assert seen == [["pending", "pending"], ["ok", "pending"], ["ok", "ok"]]
    outcomes = run_all(options)
    write_report(outcomes, {"quick": False}, tmp_path)
    assert load_results(tmp_path)["metadata"]["wall_seconds"].keys() == {"fewshot", "rnn"}


def test_a_missing_figure_file_is_shown_as_missing_not_as_a_broken_image(tmp_path, fake_systems):
    fake_systems(rnn="good")
    outcomes = run_all(ReproduceOptions(out_dir=tmp_path, systems=["rnn"], progress=False))
    (tmp_path / "rnn" / "grid.png").unlink()
    write_report(outcomes, {}, tmp_path)
    assert "figure file not found" in (tmp_path / "index.html").read_text(encoding="utf-8")
    assert [f["exists"] for f in load_results(tmp_path)["systems"]["rnn"]["figures"]] == [True, False]


# ---------------------------------------------------------------------------- usage


@pytest.mark.parametrize("bad", ["fewshot,bogus", "rnnn", ",", ""])
def test_unknown_or_empty_systems_are_a_usage_error_exit_2(tmp_path, bad, capsys):
    assert reproduce(tmp_path / "r", "--systems", bad) == 2
    err = capsys.readouterr().err
    assert "metashot: error:" in err and "fewshot,optim,chem,rnn" in err
    assert not (tmp_path / "r").exists()  # nothing ran


def test_systems_suggests_the_closest_name_and_keeps_order_without_duplicates():
    with pytest.raises(UsageError, match="did you mean 'rnn'"):
        parse_systems("rnnn")
    assert parse_systems("rnn, fewshot,rnn") == ["rnn", "fewshot"]
    assert parse_systems(None) == parse_systems("all") == list(SYSTEM_NAMES)


def test_cuda_on_a_machine_without_it_is_a_usage_error(tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["reproduce", "--out", str(tmp_path), "--device", "cuda", "--systems", "rnn"]) == 2


def test_out_is_required():
    with pytest.raises(SystemExit) as info:
        main(["reproduce", "--quick"])
    assert info.value.code == 2


def test_to_jsonable_handles_numpy_torch_paths_and_non_finite_values():
    import numpy as np
    import torch

    value = {"a": np.float32(0.5), "b": torch.tensor([1.0, float("inf")]), "c": Path("x/y.png"), 3: (1, 2)}
    assert to_jsonable(value) == {"a": 0.5, "b": [1.0, None], "c": "x/y.png", "3": [1, 2]}


# ---------------------------------------------------------------------------- the real systems


@pytest.mark.parametrize("system", SYSTEM_NAMES)
def test_each_real_system_report_module_provides_build_report(system):
    if importlib.util.find_spec(f"metashot.{system}") is None or \
            importlib.util.find_spec(f"metashot.{system}.report") is None:
        pytest.skip(f"metashot.{system}.report does not exist yet")
    module = importlib.import_module(f"metashot.{system}.report")
    params = list(inspect.signature(module.build_report).parameters)
    assert len(params) == 1, f"build_report must take exactly (options), got {params}"


# ---------------------------------------------------------------------------- verify


def test_verify_reruns_json_commands_and_finds_the_claimed_number(tmp_path):
    from metashot.reproduce.verify import main as verify_main
    from metashot.reproduce.verify import verify_report

    def printing(value):  # a command that prints one JSON object, as `evaluate --json` does
        return f"python -c 'import json; print(json.dumps({{\"run\": {{\"accuracy\": {value!r}}}}}))'"

    claims = [
        {"claim": "same", "command": printing(0.1 + 0.2), "ours_value": 0.1 + 0.2},
        {"claim": "different", "command": printing(0.5), "ours_value": 0.25},
        {"claim": "log", "command": "cat metrics.jsonl", "ours_value": 0.3},
        {"claim": "no number", "command": printing(0.5), "ours_value": None},
        {"claim": "crash", "command": "python -c 'raise SystemExit(3)'", "ours_value": 0.3},
    ]
    (tmp_path / "results.json").write_text(json.dumps({"systems": {"rnn": {"claims": claims}}}))
    checks = verify_report(tmp_path / "results.json", timeout=60)
    assert [c.status for c in checks] == ["equal", "not found", "not checkable", "not checkable", "error"]
    assert checks[0].detail == "run.accuracy = 0.30000000000000004"
    assert verify_main([str(tmp_path)]) == 1  # a command failed
    claims.pop()
    (tmp_path / "results.json").write_text(json.dumps({"systems": {"rnn": {"claims": claims}}}))
    assert verify_main([str(tmp_path)]) == 0
    assert verify_main([str(tmp_path), "--strict"]) == 1
