"""`metashot data verify` / `list` on the real data and on damaged copies of it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from metashot.cli import main
from metashot.data.registry import DATASETS, get_dataset

SMALL = "omniglot"  # 8 files, ~5 MB: cheap to copy


def _copy_dataset(shared: Path, dest: Path, name: str) -> Path:
    for f in get_dataset(name).files:
        (dest / f.path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shared / f.path, dest / f.path)
    return dest


def _flip_byte(path: Path, offset: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    offset = len(data) // 2 if offset is None else offset
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.needs_shared_data
def test_verify_passes_on_the_shared_data_for_omniglot_and_mnist(shared_data, capsys):
    assert main(["data", "verify", "omniglot", "mnist", "--data-dir", str(shared_data), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "omniglot: ok" in out and "mnist: ok" in out
    assert "all present files verified (9 checks passed)" in out


@pytest.mark.needs_shared_data
@pytest.mark.slow
def test_verify_passes_on_the_whole_shared_data_directory(shared_data, capsys):
    assert main(["data", "verify", "--data-dir", str(shared_data), "--json", "--no-progress"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["failed"] == []
    assert {d["name"] for d in report["datasets"]} == set(DATASETS)
    assert all(f["status"] == "ok" for d in report["datasets"] for f in d["files"])


@pytest.mark.needs_shared_data
@pytest.mark.parametrize("relpath", ["omniglot/omniglot_evaluation.npz", "splits/omniglot-vinyals/val.txt"])
@pytest.mark.parametrize("offset", [None, 12])  # the middle of the file, and a zip header timestamp byte
def test_flipping_one_byte_makes_verify_fail_naming_that_file(shared_data, tmp_path, capsys, relpath, offset):
    root = _copy_dataset(shared_data, tmp_path, SMALL)
    _flip_byte(root / relpath, offset)
    code = main(["data", "verify", SMALL, "--data-dir", str(root), "--no-progress"])
    captured = capsys.readouterr()
    assert code == 1
    assert f"corrupt      {relpath}" in captured.out
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and relpath in err[0] and "corrupt" in err[0]
    assert "metashot data download omniglot --force" in err[0]


@pytest.mark.needs_shared_data
def test_a_truncated_file_is_named_as_truncated(shared_data, tmp_path, capsys):
    root = _copy_dataset(shared_data, tmp_path, SMALL)
    target = root / "omniglot/omniglot_background.npz"
    target.write_bytes(target.read_bytes()[:1000])
    assert main(["data", "verify", "--data-dir", str(root), "--no-progress", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    omniglot = next(d for d in report["datasets"] if d["name"] == "omniglot")
    bad = [f for f in omniglot["files"] if f["status"] != "ok"]
    assert bad == [{"dataset": "omniglot", "path": "omniglot/omniglot_background.npz", "status": "truncated",
                    "detail": "1000 bytes, expected 3054939"}]
    # datasets that are simply absent are "not downloaded", not failures
    assert {d["name"]: d["status"] for d in report["datasets"]}["mnist"] == "not downloaded"
    assert report["failed"] == ["omniglot"]


@pytest.mark.needs_shared_data
def test_missing_file_of_a_present_dataset_fails_with_the_download_command(shared_data, tmp_path, capsys):
    root = _copy_dataset(shared_data, tmp_path, SMALL)
    (root / "splits/omniglot-vinyals/test.txt").unlink()
    assert main(["data", "verify", "--data-dir", str(root), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "splits/omniglot-vinyals/test.txt" in err and "`metashot data download omniglot`" in err


def test_verify_of_a_named_dataset_that_is_absent_fails(tmp_path, capsys):
    assert main(["data", "verify", "mnist", "--data-dir", str(tmp_path), "--no-progress"]) == 1
    assert "metashot data download mnist" in capsys.readouterr().err


def test_verify_of_an_empty_data_dir_says_so(tmp_path, capsys):
    assert main(["data", "verify", "--data-dir", str(tmp_path / "nothing"), "--no-progress"]) == 1
    assert "no dataset files found" in capsys.readouterr().err


@pytest.mark.needs_shared_data
def test_a_converted_file_recorded_in_the_manifest_is_accepted_but_a_later_flip_is_not(shared_data, tmp_path, capsys):
    from metashot.data.converters import content_digest, write_npz
    from metashot.data.download import sha256_file
    from metashot.data.verify import read_manifest, write_manifest

    root = _copy_dataset(shared_data, tmp_path, SMALL)
    target = root / "omniglot/omniglot_evaluation.npz"
    import numpy as np

    with np.load(target) as d:  # rewrite with another key order: same content, different bytes
        arrays = {k: d[k] for k in reversed(d.files)}
    write_npz(target, arrays)
    assert content_digest(target) == get_dataset("omniglot").files[1].content_sha256
    assert main(["data", "verify", SMALL, "--data-dir", str(root), "--no-progress"]) == 1  # not recorded yet
    write_manifest(root, {"omniglot/omniglot_evaluation.npz": {
        "sha256": sha256_file(target), "size": target.stat().st_size, "note": "converted (test)"}})
    assert read_manifest(root)
    assert main(["data", "verify", SMALL, "--data-dir", str(root), "--no-progress"]) == 0
    assert "ok-converted" in capsys.readouterr().out
    _flip_byte(target)
    assert main(["data", "verify", SMALL, "--data-dir", str(root), "--no-progress"]) == 1


@pytest.mark.needs_shared_data
def test_list_reports_which_files_are_present(shared_data, tmp_path, capsys):
    root = _copy_dataset(shared_data, tmp_path, SMALL)
    (root / "splits/omniglot-vinyals/test.txt").unlink()
    assert main(["data", "list", "--data-dir", str(root), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    status = {d["name"]: (d["status"], d["present_files"], d["total_files"]) for d in report["datasets"]}
    assert status["omniglot"] == ("partial", 7, 8)
    assert status["mnist"] == ("absent", 0, 1)
    assert status["miniimagenet-splits"] == ("absent", 1, 4)  # only the licence it shares with omniglot
    assert main(["data", "list", "--data-dir", str(shared_data)]) == 0
    out = capsys.readouterr().out
    assert all(f"{name}" in out for name in DATASETS) and "absent" not in out
