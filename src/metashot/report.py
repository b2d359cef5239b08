"""Typed pieces of the reproduction report, shared by every system's ``report.py``.

Each system provides ``metashot.<system>.report.build_report(options) -> SystemReport``;
``metashot reproduce`` collects them into ``index.html``, ``report.md`` and ``results.json``.
A system whose data or checkpoint is missing raises :class:`~metashot.errors.DataError` or
:class:`~metashot.errors.CheckpointError` from ``build_report``; the report then shows that system
as missing, with the error's message (which names the fixing command), instead of crashing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Status = Literal["met", "not met", "info", "missing"]


@dataclass
class ReportOptions:
    """What ``metashot reproduce`` asks of each system.

    Attributes:
        out_dir: folder for this system's figures (PNG) and any files it writes.
        quick: finish in about two minutes on 2 CPU cores (fewer episodes/runs/molecules); the
            report says the numbers are quick ones.
        train: retrain from scratch into ``out_dir`` first instead of using committed checkpoints.
        data_dir: ``--data-dir`` (None: $METASHOT_DATA, else ~/.cache/metashot).
        device: ``--device`` value.
        seed: seed for every evaluation, so the numbers equal what ``evaluate`` prints.
        checkpoints_dir: folder with the committed checkpoints (``checkpoints/`` of the repo).
    """

    out_dir: Path
    quick: bool = False
    train: bool = False
    data_dir: str | None = None
    device: str = "auto"
    seed: int = 0
    checkpoints_dir: Path = Path("checkpoints")


@dataclass
class Claim:
    """One row of a system's table: a claim of the paper against our measured number.

    Attributes:
        claim: what is claimed, e.g. "Omniglot 5-way 1-shot accuracy (Matching Networks)".
        paper: the paper's number as text, e.g. "98.1%".
        ours: our number as text, e.g. "97.6 ± 0.2%".
        command: the exact command that reproduces ``ours``.
        status: "met", "not met" (say the gap), "info" (no target) or "missing".
        gap: e.g. "-0.5 points"; empty when met or not applicable.
        paper_value / ours_value / ci95: the numbers behind the text (fractions where accuracies).
    """

    claim: str
    paper: str
    ours: str
    command: str
    status: Status
    gap: str = ""
    paper_value: float | None = None
    ours_value: float | None = None
    ci95: float | None = None


@dataclass
class Figure:
    """A PNG written by a system into its ``out_dir``."""

    title: str
    path: Path
    caption: str = ""


@dataclass
class SystemReport:
    """A system's part of the report."""

    system: str  # "fewshot" | "optim" | "chem" | "rnn"
    title: str  # e.g. "Matching Networks (Vinyals et al. 2016)"
    claims: list[Claim] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)  # raw numbers for results.json
    missing: str | None = None  # set when data/checkpoint is missing: the message with the fix
