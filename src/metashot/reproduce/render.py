"""Write the report: ``index.html`` (self-contained), ``report.md`` and ``results.json``.

The renderer only displays what each system's ``build_report`` returned: the text of every claim
as given, and the numbers behind it (``paper_value``, ``ours_value``, ``ci95``) unchanged, so the
report says exactly what the systems' ``evaluate``/``compare`` commands print.

- ``index.html``: inline CSS, every figure embedded as a base64 data URI, no script, no network.
- ``report.md``: the same tables; figures linked as relative PNG paths (``<system>/<name>.png``).
- ``results.json``: metadata, every claim (all fields) and each system's raw ``results``.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import mimetypes
import os
import re
import shutil
from html import escape
from pathlib import Path
from typing import Any

from metashot.report import Claim, Figure
from metashot.reproduce.runner import SystemOutcome

RESULTS_FORMAT = "metashot-reproduce/1"

# ---------------------------------------------------------------------------- helpers


def to_jsonable(value: Any) -> Any:
    """Strict-JSON version of ``value``: dataclasses -> dicts, Paths -> str, arrays/tensors -> lists,
    numpy/torch scalars -> numbers, NaN/inf -> None."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((to_jsonable(v) for v in value), key=repr)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy arrays/scalars, torch tensors
        if hasattr(value, "detach"):
            value = value.detach().cpu()
        return to_jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


_FIX_PATTERNS = (
    re.compile(r"`([^`]+)`"),
    re.compile(r"\bfix(?:ed)?(?: it)?(?: with| by running)?\s*:\s*([^;\n]+)", re.IGNORECASE),
    re.compile(r"\b((?:metashot|make|pip install|python -m) [^;\n'\")]+)"),
)


def fix_command(message: str) -> str | None:
    """The command a missing-system message tells the user to run, if it names one."""
    for pattern in _FIX_PATTERNS:
        match = pattern.search(message)
        if match:
            return match.group(1).strip().rstrip(".")
    return None


def figure_file(figure: Figure, out_dir: Path) -> Path:
    """Where a figure's file is: absolute paths as given, relative ones inside the system's folder
    (falling back to the current directory)."""
    path = Path(figure.path)
    if path.is_absolute():
        return path
    inside = out_dir / path
    return inside if inside.exists() or not path.exists() else path.resolve()


def _relative_figure(path: Path, report_dir: Path, system: str) -> str:
    """The figure's path relative to the report folder; figures written elsewhere are copied into
    ``DIR/<system>/`` first so that ``report.md``'s links keep working."""
    try:
        return path.resolve().relative_to(report_dir.resolve()).as_posix()
    except ValueError:
        target = report_dir / system / path.name
        if path.exists() and not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        return f"{system}/{path.name}"


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def claim_counts(outcome: SystemOutcome) -> dict[str, int]:
    claims = outcome.report.claims
    return {s: sum(c.status == s for c in claims) for s in ("met", "not met", "info", "missing")}


def _write_text(path: Path, text: str) -> None:
    """Atomic write: the report is rewritten after each system while the run goes on."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _status_label(outcome: SystemOutcome) -> str:
    return {"ok": "done", "missing": "missing", "failed": "failed", "pending": "not run yet"}[outcome.status]


# ---------------------------------------------------------------------------- results.json


def results_document(outcomes: list[SystemOutcome], metadata: dict[str, Any], report_dir: Path) -> dict:
    systems = {}
    for o in outcomes:
        figures = []
        for fig in o.report.figures:
            path = figure_file(fig, o.out_dir)
            figures.append({"title": fig.title, "caption": fig.caption, "path": _relative_figure(path, report_dir, o.system),
                            "exists": path.exists()})
        systems[o.system] = {
            "title": o.report.title,
            "status": o.status,
            "seconds": round(o.seconds, 3),
            "cpu_seconds": round(o.cpu_seconds, 3),
            "message": o.message,
            "fix": fix_command(o.message) if o.status == "missing" else None,
            "counts": claim_counts(o),
            "claims": [to_jsonable(c) for c in o.report.claims],
            "figures": figures,
            "notes": list(o.report.notes),
            "results": to_jsonable(o.report.results),
            "traceback": o.traceback or None,
        }
    return {"format": RESULTS_FORMAT, "metadata": to_jsonable(metadata), "systems": systems}


# ---------------------------------------------------------------------------- report.md


def _md_cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _md_claim_row(c: Claim) -> str:
    status = c.status + (f" ({c.gap})" if c.gap else "")
    ours = c.ours + (f" <br>`{_number(c.ours_value)}`" if c.ours_value is not None else "")
    if c.ci95 is not None:
        ours += f" (95% CI ±{_number(c.ci95)})"
    cells = [c.claim, c.paper, ours, f"`{c.command}`" if c.command else "", status]
    return "| " + " | ".join(_md_cell(x) for x in cells) + " |"


def render_markdown(outcomes: list[SystemOutcome], metadata: dict[str, Any], report_dir: Path) -> str:
    lines = ["# metashot: reproduction report", ""]
    if metadata.get("quick"):
        lines += ["> **QUICK RUN** (`--quick`): fewer episodes, runs and molecules than the full run; "
                  "the numbers are noisier than the paper comparison deserves.", ""]
    if metadata.get("train"):
        lines += ["> Retrained from scratch (`--train`) instead of the committed checkpoints.", ""]
    for key in ("date", "command", "git_commit", "metashot_version", "torch_version", "python_version",
                "device", "seed", "total_seconds"):
        if metadata.get(key) is not None:
            lines.append(f"- **{key.replace('_', ' ')}**: `{metadata[key]}`")
    lines += ["", "| system | status | met | not met | info | missing | wall time |", "|---|---|---|---|---|---|---|"]
    for o in outcomes:
        n = claim_counts(o)
        lines.append(f"| [{o.system}](#{o.system}) | {_status_label(o)} | {n['met']} | {n['not met']} | {n['info']} | {n['missing']} "
                     f"| {o.seconds:.1f} s ({o.cpu_seconds:.1f} s CPU) |")
    for o in outcomes:
        lines += ["", f'<a id="{o.system}"></a>', "", f"## {o.report.title} (`{o.system}`)", "",
                  f"Status: **{_status_label(o)}**, {o.seconds:.1f} s.", ""]
        if o.status in ("missing", "failed"):
            lines += [f"> **{o.status.upper()}**: {_md_cell(o.message)}", ""]
            fix = fix_command(o.message) if o.status == "missing" else None
            if fix:
                lines += [f"Fix: `{fix}`", ""]
        if o.report.claims:
            lines += ["| claim | paper | ours | command | status |", "|---|---|---|---|---|"]
            lines += [_md_claim_row(c) for c in o.report.claims]
            lines.append("")
        for fig in o.report.figures:
            rel = _relative_figure(figure_file(fig, o.out_dir), report_dir, o.system)
            lines += [f"![{_md_cell(fig.title)}]({rel})", "", f"*{_md_cell(fig.title)}*"
                      + (f": {_md_cell(fig.caption)}" if fig.caption else ""), ""]
        lines += [f"- {_md_cell(note)}" for note in o.report.notes]
    return "\n".join(lines).rstrip() + "\n"


# ---------------------------------------------------------------------------- index.html

_CSS = """
:root{--ok:#1a7f37;--ok-bg:#dafbe1;--bad:#cf222e;--bad-bg:#ffebe9;--info:#57606a;--info-bg:#eaeef2;
--warn:#9a6700;--warn-bg:#fff8c5;--line:#d0d7de}
*{box-sizing:border-box}
body{font:15px/1.5 -apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:#1f2328;margin:0;background:#f6f8fa}
main{max-width:1180px;margin:0 auto;padding:24px}
h1{margin:0 0 4px;font-size:28px}h2{margin:0 0 6px;font-size:21px}
.sub{color:var(--info);margin:0 0 16px}
.banner{border:1px solid #d4a72c;background:var(--warn-bg);color:#4d2d00;padding:10px 14px;border-radius:6px;
margin:12px 0;font-weight:600}
.banner b{letter-spacing:.08em}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:18px 20px;margin:18px 0}
table{border-collapse:collapse;width:100%;margin:10px 0}
table.claims{table-layout:fixed}
table.claims col.c-claim{width:25%}table.claims col.c-paper{width:13%}table.claims col.c-ours{width:17%}
table.claims col.c-cmd{width:30%}table.claims col.c-status{width:15%}
table.claims code{display:block;white-space:pre-wrap;overflow-wrap:anywhere;word-break:normal;padding:4px 6px}
th,td{border-bottom:1px solid var(--line);padding:7px 9px;text-align:left;vertical-align:top}
th{background:#f6f8fa;font-size:13px;text-transform:uppercase;letter-spacing:.03em;color:#424a53}
table.summary td.num{white-space:nowrap}
table.claims td{overflow-wrap:break-word}
.raw{display:block;color:var(--info);font-size:12px;font-family:ui-monospace,Menlo,Consolas,monospace}
code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px;background:#f6f8fa;
border:1px solid var(--line);border-radius:4px;padding:1px 4px;word-break:break-word;white-space:pre-wrap}
.badge{display:inline-block;border-radius:12px;padding:1px 9px;font-size:12.5px;font-weight:600;white-space:nowrap}
.met,.done{color:var(--ok);background:var(--ok-bg)}
.notmet,.failed{color:var(--bad);background:var(--bad-bg)}
.info,.missing,.pending{color:var(--info);background:var(--info-bg)}
.gap{display:block;color:var(--bad);font-size:12.5px;font-weight:600;margin-top:3px}
.gap.quiet{color:var(--info);font-weight:400}
tr.row-missing td{color:var(--info)}
.box{border-radius:6px;padding:10px 14px;margin:10px 0}
.box.missing{border:1px solid var(--line)}.box.failed{border:1px solid #ff8182}
.figs{display:flex;flex-wrap:wrap;gap:16px;margin-top:14px;align-items:flex-start}
figure{margin:0;border:1px solid var(--line);border-radius:6px;padding:8px;background:#fff;max-width:100%;
flex:0 1 auto}
figure img{max-width:100%;height:auto;display:block;margin:0 auto}
figcaption{font-size:13px;color:#424a53;margin-top:6px;max-width:100%}
.nofig{color:var(--bad);padding:30px 8px;text-align:center}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:8px 0;font-size:13.5px}
dl.meta dt{color:var(--info)}dl.meta dd{margin:0;word-break:break-all}
details pre{font-size:12px;overflow:auto;background:#f6f8fa;padding:8px}
ul.notes{color:#424a53;font-size:14px}
a{color:#0969da}
"""


def _inline(text: str) -> str:
    """Escape ``text`` for HTML, showing `backticked` spans as code."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escape(text))


def _data_uri(path: Path) -> str:
    mime = mimetypes.guess_type(path.name)[0] or "image/png"
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _pixel_width(path: Path) -> int | None:
    try:
        from PIL import Image

        with Image.open(path) as image:
            return int(image.width)
    except Exception:  # not an image PIL can read: let the browser size it
        return None


def _html_claim_row(c: Claim) -> str:
    css = {"met": "met", "not met": "notmet"}.get(c.status, c.status)
    raw = ""
    if c.ours_value is not None:
        raw = f"= {_number(c.ours_value)}" + (f" ± {_number(c.ci95)} (95% CI)" if c.ci95 is not None else "")
    paper_raw = f'<span class="raw">= {_number(c.paper_value)}</span>' if c.paper_value is not None else ""
    quiet = "" if c.status == "not met" else " quiet"  # red only for a real shortfall
    gap = f'<span class="gap{quiet}">{_inline(c.gap)}</span>' if c.gap else ""
    command = f"<code>{escape(c.command)}</code>" if c.command else ""
    return (
        f"<tr class=row-{css}><td>{escape(c.claim)}</td><td class=num>{escape(c.paper)}{paper_raw}</td>"
        f'<td class=num>{escape(c.ours)}{f"<span class=raw>{escape(raw)}</span>" if raw else ""}</td>'
        f'<td>{command}</td><td><span class="badge {css}">{escape(c.status)}</span>{gap}</td></tr>'
    )


def _html_system(o: SystemOutcome) -> str:
    parts = [f'<section id="{escape(o.system)}"><h2>{escape(o.report.title)}</h2>',
             f'<p class=sub><code>{escape(o.system)}</code> &middot; <span class="badge {o.status if o.status != "ok" else "done"}">'
             f"{_status_label(o)}</span> &middot; {o.seconds:.1f} s</p>"]
    if o.status == "missing":
        fix = fix_command(o.message)
        parts.append(f'<div class="box missing"><b>Missing.</b> {_inline(o.message)}'
                     + (f"<br>Fix: <code>{escape(fix)}</code>" if fix else "") + "</div>")
    elif o.status == "failed":
        parts.append(f'<div class="box failed"><b>Failed.</b> {_inline(o.message)}'
                     + (f"<details><summary>traceback</summary><pre>{escape(o.traceback)}</pre></details>"
                        if o.traceback else "") + "</div>")
    elif o.status == "pending":
        parts.append('<div class="box missing">Not run yet: the report is rewritten as each system finishes.</div>')
    if o.report.claims:
        parts.append("<table class=claims><colgroup><col class=c-claim><col class=c-paper><col class=c-ours>"
                     "<col class=c-cmd><col class=c-status></colgroup><thead><tr><th>Claim</th><th>Paper</th><th>Ours</th><th>Command</th>"
                     "<th>Status</th></tr></thead><tbody>")
        parts += [_html_claim_row(c) for c in o.report.claims]
        parts.append("</tbody></table>")
    elif o.status == "ok":
        parts.append("<p class=sub>This system reported no claims.</p>")
    if o.report.figures:
        parts.append("<div class=figs>")
        for fig in o.report.figures:
            path = figure_file(fig, o.out_dir)
            width = _pixel_width(path) if path.is_file() else None
            if path.is_file():
                img = f'<img src="{_data_uri(path)}" alt="{escape(fig.title, quote=True)}">'
            else:
                img = f'<div class=nofig>figure file not found: {escape(str(path))}</div>'
            caption = f"<b>{escape(fig.title)}</b>" + (f". {escape(fig.caption)}" if fig.caption else "")
            # The figure box is as wide as the image (at most the page), so the caption wraps under it.
            style = f' style="width:min(100%,{width + 18}px)"' if width else ""
            parts.append(f"<figure{style}>{img}<figcaption>{caption}</figcaption></figure>")
        parts.append("</div>")
    if o.report.notes:
        parts.append("<ul class=notes>" + "".join(f"<li>{_inline(n)}</li>" for n in o.report.notes) + "</ul>")
    parts.append("</section>")
    return "\n".join(parts)


def render_html(outcomes: list[SystemOutcome], metadata: dict[str, Any]) -> str:
    head = ("<!doctype html><html lang=en><head><meta charset=utf-8>"
            "<meta name=viewport content='width=device-width,initial-scale=1'>"
            f"<title>metashot reproduction report</title><style>{_CSS}</style></head><body><main>")
    parts = [head, "<h1>metashot: reproduction report</h1>",
             "<p class=sub>Four NIPS 2016 papers, claim by claim: the paper's number, ours, and the command "
             "that gives ours.</p>"]
    if metadata.get("quick"):
        parts.append("<div class=banner id=quick-banner><b>QUICK RUN</b> &mdash; <code>--quick</code>: fewer "
                     "episodes, optimizee runs and molecules than the full run, so the numbers are noisier; "
                     "run <code>metashot reproduce --out DIR</code> for the full comparison.</div>")
    if metadata.get("train"):
        parts.append("<div class=banner>Retrained from scratch (<code>--train</code>) instead of the "
                     "committed checkpoints.</div>")
    rows = []
    for o in outcomes:
        n = claim_counts(o)
        css = "done" if o.status == "ok" else o.status
        rows.append(f'<tr><td><a href="#{escape(o.system)}">{escape(o.report.title)}</a></td>'
                    f'<td><span class="badge {css}">{_status_label(o)}</span></td>'
                    f"<td>{n['met']}</td><td>{n['not met']}</td><td>{n['info']}</td><td>{n['missing']}</td>"
                    f"<td class=num>{o.seconds:.1f} s <span class=raw>{o.cpu_seconds:.1f} s CPU</span></td></tr>")
    parts.append("<section id=summary><h2>Summary</h2><table class=summary><thead><tr><th>System</th>"
                 "<th>Status</th><th>Met</th><th>Not met</th><th>Info</th><th>Missing</th><th>Wall time</th></tr></thead>"
                 "<tbody>" + "".join(rows) + "</tbody></table>")
    meta_keys = ("date", "command", "git_commit", "metashot_version", "torch_version", "python_version",
                 "device", "seed", "platform", "total_seconds")
    parts.append("<dl class=meta>" + "".join(
        f"<dt>{escape(k.replace('_', ' '))}</dt><dd>{escape(str(metadata[k]))}</dd>"
        for k in meta_keys if metadata.get(k) is not None) + "</dl></section>")
    parts += [_html_system(o) for o in outcomes]
    parts.append("</main></body></html>\n")
    return "\n".join(parts)


# ---------------------------------------------------------------------------- all three


def write_report(outcomes: list[SystemOutcome], metadata: dict[str, Any], report_dir: Path) -> dict[str, Path]:
    """Write ``index.html``, ``report.md`` and ``results.json`` into ``report_dir``; return their paths."""
    report_dir.mkdir(parents=True, exist_ok=True)
    meta = dict(metadata)
    meta["wall_seconds"] = {o.system: round(o.seconds, 3) for o in outcomes}
    meta["cpu_seconds"] = {o.system: round(o.cpu_seconds, 3) for o in outcomes}
    meta.setdefault("total_seconds", round(sum(o.seconds for o in outcomes), 1))
    paths = {"html": report_dir / "index.html", "markdown": report_dir / "report.md",
             "json": report_dir / "results.json"}
    document = results_document(outcomes, meta, report_dir)
    _write_text(paths["json"], json.dumps(document, indent=2, allow_nan=False, ensure_ascii=False) + "\n")
    _write_text(paths["markdown"], render_markdown(outcomes, meta, report_dir))
    _write_text(paths["html"], render_html(outcomes, meta))
    return paths
