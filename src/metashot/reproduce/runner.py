"""Run each system's ``build_report`` and collect the outcomes; never crash on one system.

Each selected system's ``metashot.<system>.report`` module is imported lazily (so ``--systems rnn``
never imports RDKit) and its ``build_report(ReportOptions)`` is called with its own output folder
``DIR/<system>/``. What can happen to a system:

- ``ok``: it returned a :class:`~metashot.report.SystemReport` (whatever its claims' statuses);
- ``missing``: its module is not in this install, a dependency is not installed, it raised
  :class:`~metashot.errors.DataError` / :class:`~metashot.errors.CheckpointError` (whose message
  names the fixing command), or it returned a report with ``missing`` set;
- ``failed``: any other exception; the message and traceback go into the report.

Exit code (see :func:`exit_code`): 0 when at least one system produced its report, 1 when none
did (every system missing or failed: nothing was reproduced, so ``make demo`` must not look
green), 2 for usage errors (raised before anything runs).
"""

from __future__ import annotations

import importlib
import logging
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from metashot.errors import CheckpointError, DataError, UsageError
from metashot.report import ReportOptions, SystemReport

log = logging.getLogger(__name__)

SYSTEM_NAMES: tuple[str, ...] = ("fewshot", "optim", "chem", "rnn")

# Shown for systems that produced no report of their own.
SYSTEM_TITLES: dict[str, str] = {
    "fewshot": "Matching Networks for One Shot Learning (Vinyals et al. 2016)",
    "optim": "Learning to learn by gradient descent by gradient descent (Andrychowicz et al. 2016)",
    "chem": "Automatic chemical design with a SMILES VAE (Gómez-Bombarelli et al. 2016)",
    "rnn": "Phased LSTM (Neil, Pfeiffer & Liu 2016)",
}

# Optional dependencies -> the extra that installs them (for "missing" messages).
_EXTRAS: dict[str, str] = {"rdkit": "chem", "selfies": "chem", "botorch": "chem"}

OutcomeStatus = Literal["ok", "missing", "failed", "pending"]
BuildReport = Callable[[ReportOptions], SystemReport]


@dataclass
class SystemOutcome:
    """What happened to one system during ``metashot reproduce``.

    Attributes:
        system: "fewshot" | "optim" | "chem" | "rnn".
        status: "ok" (report built), "missing" (data/checkpoint/module absent), "failed" (error),
            "pending" (not run yet: only in reports written while the run is in progress).
        report: the system's report; for missing/failed systems an empty one with the title.
        seconds: wall time of ``build_report`` (import included).
        cpu_seconds: CPU time of this process (all threads) during ``build_report``: unlike the wall
            time, it does not grow when other programs share the cores.
        message: for missing/failed systems, the one-line reason (for missing: with the fix).
        traceback: for failed systems, the formatted traceback.
        out_dir: the folder the system wrote its figures into.
    """

    system: str
    status: OutcomeStatus
    report: SystemReport
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    message: str = ""
    traceback: str = ""
    out_dir: Path = field(default_factory=Path)


# ---------------------------------------------------------------------------- helpers


def parse_systems(text: str | None) -> list[str]:
    """``"rnn,fewshot"`` -> ``["rnn", "fewshot"]``; ``None`` -> all systems. Unknown names raise
    :class:`~metashot.errors.UsageError` with a suggestion."""
    if text is None:
        return list(SYSTEM_NAMES)
    names: list[str] = []
    for raw in text.split(","):
        name = raw.strip().lower()
        if not name:
            continue
        if name == "all":
            names.extend(SYSTEM_NAMES)
            continue
        if name not in SYSTEM_NAMES:
            import difflib

            close = difflib.get_close_matches(name, SYSTEM_NAMES, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise UsageError(
                f"unknown system {raw.strip()!r} in --systems; {hint}choose from {','.join(SYSTEM_NAMES)}"
            )
        names.append(name)
    if not names:
        raise UsageError(f"--systems is empty; choose from {','.join(SYSTEM_NAMES)}")
    return list(dict.fromkeys(names))  # drop duplicates, keep order


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def load_build_report(system: str) -> BuildReport:
    """Import ``metashot.<system>.report`` and return its ``build_report``.

    Raises:
        ModuleNotFoundError: the module (or one of its dependencies) is not installed.
        AttributeError: the module has no ``build_report``.
    """
    module = importlib.import_module(f"metashot.{system}.report")
    build = getattr(module, "build_report", None)
    if not callable(build):
        raise AttributeError(f"metashot.{system}.report has no build_report(options) function")
    return build


def _missing_module_message(system: str, exc: ModuleNotFoundError) -> str:
    missing = exc.name or ""
    own = {f"metashot.{system}", f"metashot.{system}.report", "metashot"}
    if missing in own:
        return (
            f"metashot.{system}.report is not part of this install yet, so the {system} claims cannot be "
            f"checked; fix: git pull && pip install -e '.[chem,dev]'"
        )
    top = missing.split(".")[0]
    extra = _EXTRAS.get(top)
    fix = f"pip install -e '.[{extra}]'" if extra else f"pip install {top}"
    return f"the {system} report needs the Python package {top!r}, which is not installed; fix: {fix}"


# ---------------------------------------------------------------------------- running one system


def run_system(
    system: str, options: ReportOptions, *, loader: Callable[[str], BuildReport] | None = None
) -> SystemOutcome:
    """Build one system's report into ``options.out_dir``; every exception becomes an outcome.

    ``loader(system) -> build_report`` defaults to :func:`load_build_report` (tests pass fakes).
    """
    loader = loader or load_build_report
    title = SYSTEM_TITLES.get(system, system)
    options.out_dir.mkdir(parents=True, exist_ok=True)
    start, cpu_start = time.perf_counter(), time.process_time()

    def outcome(status: OutcomeStatus, report: SystemReport | None = None, **kw: str) -> SystemOutcome:
        if status != "ok" and not any(options.out_dir.iterdir()):
            options.out_dir.rmdir()  # no empty folders for systems that wrote nothing
        return SystemOutcome(
            system=system,
            status=status,
            report=report if report is not None else SystemReport(system=system, title=title),
            seconds=time.perf_counter() - start,
            cpu_seconds=time.process_time() - cpu_start,
            out_dir=options.out_dir,
            **kw,
        )

    try:
        build = loader(system)
        report = build(options)
    except ModuleNotFoundError as exc:
        message = _missing_module_message(system, exc)
        return outcome("missing", SystemReport(system=system, title=title, missing=message), message=message)
    except (DataError, CheckpointError) as exc:
        message = _one_line(exc)
        return outcome("missing", SystemReport(system=system, title=title, missing=message), message=message)
    except Exception as exc:  # one system's bug must not hide the other systems' results
        log.debug("%s failed", system, exc_info=True)
        return outcome(
            "failed", message=f"{type(exc).__name__}: {_one_line(exc)}", traceback=traceback.format_exc()
        )
    if not isinstance(report, SystemReport):
        return outcome(
            "failed",
            message=f"build_report returned {type(report).__name__}, expected metashot.report.SystemReport",
        )
    if not report.title:
        report.title = title
    if report.missing:
        return outcome("missing", report, message=report.missing)
    return outcome("ok", report)


# ---------------------------------------------------------------------------- running them all


@dataclass
class ReproduceOptions:
    """Everything ``metashot reproduce`` was asked to do (the CLI's flags, typed).

    Attributes:
        out_dir: the report folder ``DIR``; each system writes into ``DIR/<system>/``.
        systems: the systems to run, in order.
        quick / train / data_dir / device / seed / checkpoints_dir: passed on in
            :class:`~metashot.report.ReportOptions`.
        progress: show a progress bar on stderr (log lines are written either way).
    """

    out_dir: Path
    systems: list[str] = field(default_factory=lambda: list(SYSTEM_NAMES))
    quick: bool = False
    train: bool = False
    data_dir: str | None = None
    device: str = "auto"
    seed: int = 0
    checkpoints_dir: Path = Path("checkpoints")
    progress: bool = True

    def for_system(self, system: str) -> ReportOptions:
        return ReportOptions(
            out_dir=self.out_dir / system,
            quick=self.quick,
            train=self.train,
            data_dir=self.data_dir,
            device=self.device,
            seed=self.seed,
            checkpoints_dir=self.checkpoints_dir,
        )


def _summary(outcome: SystemOutcome) -> str:
    if outcome.status == "ok":
        claims = outcome.report.claims
        met = sum(c.status == "met" for c in claims)
        not_met = sum(c.status == "not met" for c in claims)
        return f"{len(claims)} claims: {met} met, {not_met} not met"
    return f"{outcome.status.upper()}: {outcome.message}"


def pending_outcome(system: str, options: ReproduceOptions) -> SystemOutcome:
    """Placeholder for a system that has not run yet."""
    title = SYSTEM_TITLES.get(system, system)
    return SystemOutcome(
        system=system, status="pending", report=SystemReport(system=system, title=title),
        out_dir=options.out_dir / system,
    )


def run_all(
    options: ReproduceOptions,
    *,
    loader: Callable[[str], BuildReport] | None = None,
    on_update: Callable[[list[SystemOutcome]], None] | None = None,
) -> list[SystemOutcome]:
    """Run every selected system in order, logging progress on stderr.

    ``on_update(outcomes)`` is called before the first system and after each one (with pending
    placeholders for the systems still to run), so a partial report survives an interrupted run.
    A KeyboardInterrupt marks the remaining systems as failed ("interrupted"), calls ``on_update``
    and is re-raised.
    """
    from tqdm.auto import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    outcomes = [pending_outcome(s, options) for s in options.systems]
    if on_update is not None:
        on_update(outcomes)
    bar = tqdm(
        total=len(options.systems), desc="reproduce", unit="system", file=sys.stderr,
        disable=not options.progress, leave=False, dynamic_ncols=True,
    )
    with bar, logging_redirect_tqdm():  # log lines print above the bar instead of through it
        for index, system in enumerate(options.systems):
            bar.set_postfix_str(system)
            log.info("[%d/%d] %s: building report%s ...", index + 1, len(options.systems), system,
                     " (quick)" if options.quick else "")
            try:
                outcomes[index] = run_system(system, options.for_system(system), loader=loader)
            except KeyboardInterrupt:
                for rest in range(index, len(outcomes)):
                    outcomes[rest] = replace(outcomes[rest], status="failed", message="interrupted (Ctrl-C)")
                if on_update is not None:
                    on_update(outcomes)
                raise
            done = outcomes[index]
            (log.info if done.status == "ok" else log.warning)(
                "[%d/%d] %s: %s (%.1f s, %.1f s CPU)", index + 1, len(options.systems), system, _summary(done),
                done.seconds, done.cpu_seconds,
            )
            bar.update(1)
            if on_update is not None:
                on_update(outcomes)
    return outcomes


def exit_code(outcomes: list[SystemOutcome]) -> int:
    """0 when at least one system produced its report, else 1 (nothing was reproduced)."""
    return 0 if any(o.status == "ok" for o in outcomes) else 1
