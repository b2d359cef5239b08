"""``metashot reproduce``: run every system's ``build_report`` and write one report.

- :mod:`~metashot.reproduce.runner`   runs the systems (lazy imports, missing/failed handling)
- :mod:`~metashot.reproduce.render`   writes ``index.html``, ``report.md``, ``results.json``
- :mod:`~metashot.reproduce.metadata` date, git commit, versions, device
- :mod:`~metashot.reproduce.browser`  headless Chromium: check a rendered report, take a screenshot
- :mod:`~metashot.reproduce.verify`   re-run the claims' commands, check they print the same numbers
- :mod:`~metashot.reproduce.cli`      the ``metashot reproduce`` command

The contract each system implements is in :mod:`metashot.report`.
"""

from metashot.reproduce.render import results_document, write_report
from metashot.reproduce.runner import (
    SYSTEM_NAMES,
    ReproduceOptions,
    SystemOutcome,
    exit_code,
    parse_systems,
    run_all,
    run_system,
)

__all__ = [
    "SYSTEM_NAMES",
    "ReproduceOptions",
    "SystemOutcome",
    "exit_code",
    "parse_systems",
    "results_document",
    "run_all",
    "run_system",
    "write_report",
]
