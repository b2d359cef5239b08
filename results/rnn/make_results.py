"""Regenerate results/rnn/: evaluate the committed checkpoints through metashot.rnn.report (the same
code as `metashot rnn evaluate`), write report.json (claims + raw numbers) and the two figures.

    OMP_NUM_THREADS=1 .venv/bin/python results/rnn/make_results.py
"""

import dataclasses
import json
import os
import platform
import sys
from pathlib import Path

import torch

from metashot.report import ReportOptions
from metashot.rnn.report import build_report

here = Path(__file__).resolve().parent
root = here.parents[1]
torch.set_num_threads(1)
os.chdir(root)  # repository-relative checkpoint paths in the recorded commands
report = build_report(ReportOptions(out_dir=here, quick="--quick" in sys.argv, device="cpu",
                                    checkpoints_dir=Path("checkpoints")))
out = {
    "command": "OMP_NUM_THREADS=1 .venv/bin/python results/rnn/make_results.py",
    "torch": torch.__version__, "machine": platform.machine(), "device": "cpu",
    "claims": [dataclasses.asdict(c) for c in report.claims],
    "figures": [{"title": f.title, "path": str(f.path.relative_to(root)), "caption": f.caption} for f in report.figures],
    "notes": report.notes,
    "results": report.results,
}
(here / "report.json").write_text(json.dumps(out, indent=2, default=str) + "\n")
for c in report.claims:
    print(f"{c.status:8s} | {c.claim} | paper {c.paper} | ours {c.ours} | {c.gap}")
