"""The report's pure parts: the docs table and the checkpoint names (the full report runs in issue 7's tests)."""

from __future__ import annotations

from metashot.fewshot.report import PAPER, checkpoint_name, results_table


def test_results_table_puts_ours_and_the_paper_side_by_side():
    rows = [
        {"model": "matching-1shot", "way": 5, "shot": 1, "accuracy": 0.9812, "ci95": 0.0021},
        {"model": "pixels", "way": 20, "shot": 5, "accuracy": 0.5543, "ci95": 0.0027},
        {"model": "baseline", "way": 5, "shot": 5, "error": "CheckpointError: missing"},
    ]
    table = results_table(rows, "source line")
    assert table.splitlines()[0] == "source line"
    assert "| Matching Networks without FCE | 98.12 ± 0.21 (98.1) | - | - | - |" in table
    assert "| Pixels, cosine NN | - | - | - | 55.43 ± 0.27 (42.6) |" in table
    assert "Baseline" not in table  # rows without an accuracy are left out


def test_checkpoint_names_follow_the_committed_folders():
    assert checkpoint_name("matching", 20, 5) == "omniglot-matching-20way5shot"
    assert checkpoint_name("matching-nofce", 20, 5) == "omniglot-matching-nofce-5shot"
    assert checkpoint_name("protonet", 20, 1) == "omniglot-protonet-1shot"
    assert checkpoint_name("baseline", 5, 5) == "omniglot-baseline"
    assert PAPER["matching"][(20, 1)] == 93.8
