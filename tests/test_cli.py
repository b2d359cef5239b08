"""The `metashot` entry point: help everywhere, exit codes, one-line errors without tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from metashot.cli import main


def _metashot(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "METASHOT_DEBUG"}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "metashot.cli", *args], capture_output=True, text=True, timeout=120, env=environment
    )


def test_top_level_help_lists_the_systems():
    result = _metashot("--help")
    assert result.returncode == 0
    assert "data" in result.stdout and "SYSTEM" in result.stdout


def test_data_help_lists_its_commands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert all(command in out for command in ("list", "download", "verify"))


@pytest.mark.parametrize("command", ["list", "download", "verify"])
def test_every_data_command_has_help(capsys, command):
    with pytest.raises(SystemExit) as exit_info:
        main(["data", command, "--help"])
    assert exit_info.value.code == 0
    assert "--data-dir" in capsys.readouterr().out


def test_unknown_system_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["no-such-system"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_system_without_command_shows_help_and_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["data"])
    assert exit_info.value.code in (0, 2)
    assert "verify" in capsys.readouterr().out


def test_a_usage_error_prints_one_line_without_traceback_and_exits_2():
    result = _metashot("data", "download", "omniglt")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "metashot: error: unknown dataset 'omniglt'; did you mean 'omniglot'? known: "
        "omniglot, mnist, zinc250k, moses, cifar10, miniimagenet-splits, cifar-fs-splits"
    ]
    assert "Traceback" not in result.stderr


def test_a_runtime_error_prints_one_line_and_exits_1(tmp_path):
    result = _metashot("data", "verify", "mnist", "--data-dir", str(tmp_path), "--no-progress")
    assert result.returncode == 1
    err = result.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("metashot: error: ") and "metashot data download mnist" in err[0]
    assert "Traceback" not in result.stderr


def test_metashot_debug_shows_the_traceback(tmp_path):
    result = _metashot("data", "verify", "mnist", "--data-dir", str(tmp_path), env={"METASHOT_DEBUG": "1"})
    assert result.returncode == 1 and "Traceback" in result.stderr


def test_json_output_is_exactly_one_object(tmp_path):
    import json

    result = _metashot("data", "list", "--json", "--data-dir", str(tmp_path))
    assert result.returncode == 0
    assert isinstance(json.loads(result.stdout), dict) and result.stdout.count("\n") == 1
