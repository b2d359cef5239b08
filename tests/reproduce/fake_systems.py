"""Fake systems for the ``metashot reproduce`` tests (the fixture is in conftest.py): each fake ``build_report`` draws a small PNG
with matplotlib (Agg) into ``options.out_dir`` and returns claims with awkward float values, so the
tests can check that the report shows exactly what the systems returned."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from metashot.errors import CheckpointError, DataError
from metashot.report import Claim, Figure, ReportOptions, SystemReport

FIX_DATA = "metashot data download omniglot"
FIX_CHECKPOINT = "metashot rnn train --preset frequency --out checkpoints/rnn-frequency"


def draw_png(path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3, 2), dpi=60)
    ax.plot([0, 1, 2, 3], [3, 1, 2, 0.5], label="ours")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def good_report(system: str) -> Callable[[ReportOptions], SystemReport]:
    """A system that works: two claims (one met, one not met with a gap), two figures."""

    def build_report(options: ReportOptions) -> SystemReport:
        options.out_dir.mkdir(parents=True, exist_ok=True)
        draw_png(options.out_dir / "curve.png", f"{system} curve")
        draw_png(options.out_dir / "grid.png", f"{system} grid")
        seed_part = options.seed / 1000.0  # proves the seed reached the system
        ours = 0.1 + 0.2 + seed_part  # 0.30000000000000004: must survive JSON exactly
        return SystemReport(
            system=system,
            title=f"Fake {system} paper",
            claims=[
                Claim(claim=f"{system} accuracy", paper="30.0%", ours=f"{100 * ours:.1f} ± 0.3%",
                      command=f"metashot {system} evaluate --checkpoint checkpoints/{system} --seed {options.seed}",
                      status="met", paper_value=0.3, ours_value=ours, ci95=1 / 3 / 100),
                Claim(claim=f"{system} | speed-up (quick={options.quick})", paper="2x", ours="1.5x",
                      command=f"metashot {system} compare --seed {options.seed}", status="not met",
                      gap="-0.5x", paper_value=2.0, ours_value=1.5),
            ],
            figures=[Figure(title=f"{system} curve", path=Path("curve.png"), caption="loss vs step, bands: ±1 sd"),
                     Figure(title=f"{system} grid", path=options.out_dir / "grid.png")],
            notes=[f"{system}: quick={options.quick}, train={options.train}, device={options.device}"],
            results={"accuracy": ours, "per_seed": [0.25, ours], "quick": options.quick,
                     "nan_value": float("nan")},
        )

    return build_report


def raising(exc: BaseException) -> Callable[[ReportOptions], SystemReport]:
    def build_report(options: ReportOptions) -> SystemReport:
        raise exc

    return build_report


BEHAVIOURS: dict[str, Callable[[str], Callable[[ReportOptions], SystemReport] | None]] = {
    "good": good_report,
    "data": lambda s: raising(DataError(f"omniglot is not in /nowhere; fix: {FIX_DATA}")),
    "checkpoint": lambda s: raising(CheckpointError(f"no checkpoint in checkpoints/{s}; run `{FIX_CHECKPOINT}`")),
    "bug": lambda s: raising(ZeroDivisionError("division by zero in fake system")),
    "absent": lambda s: None,
}
