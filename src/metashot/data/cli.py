"""``metashot data list | download NAME | verify [NAME ...]``."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from typing import Any

from metashot.cliutils import add_data_dir, add_json, print_json
from metashot.data.paths import data_dir
from metashot.data.registry import DATASETS, get_dataset, list_datasets
from metashot.data.verify import MISSING, summarize, verify
from metashot.errors import ChecksumError, DataError


def register(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("list", help="known datasets and which of their files are present",
                       description="List the registered datasets and which files the data directory holds.")
    add_data_dir(p)
    add_json(p)
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("download", help="download, convert and verify a dataset",
                       description="Download a dataset from its official source(s), convert it into the cached "
                       "layout, verify it and install it into the data directory.")
    p.add_argument("name", metavar="NAME", help=f"dataset: {', '.join(list_datasets())}")
    add_data_dir(p)
    p.add_argument("--force", action="store_true", help="download again even if the files verify")
    p.add_argument("--keep-downloads", action="store_true", help="keep the raw downloads in DATA_DIR/.downloads")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=cmd_download)

    p = sub.add_parser("verify", help="check the sha256 of every dataset file (exit 1 if any is bad)",
                       description="Check dataset files against the registry's sha256 (corrupt and truncated "
                       "files are named; exit status 1). Without NAME, every dataset that is present.")
    p.add_argument("names", nargs="*", metavar="NAME", help="datasets to check (default: all)")
    add_data_dir(p)
    add_json(p)
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=cmd_verify)


def _progress(args: argparse.Namespace) -> bool:
    return not args.no_progress and sys.stderr.isatty()


# --- list ------------------------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> int:
    root = data_dir(args.data_dir)
    rows: list[dict[str, Any]] = []
    owners = Counter(f.path for entry in DATASETS.values() for f in entry.files)
    for entry in DATASETS.values():
        files = [{"path": f.path, "size": f.size, "present": (root / f.path).is_file()} for f in entry.files]
        n = sum(f["present"] for f in files)
        # a file shared with another dataset (a licence) alone does not make this one partial
        own = sum(f["present"] for f in files if owners[f["path"]] == 1)
        rows.append({
            "name": entry.name,
            "status": "present" if n == len(files) else ("partial" if own else "absent"),
            "present_files": n,
            "total_files": len(files),
            "description": entry.description,
            "licence": entry.licence,
            "files": files,
            "sources": [{"filename": s.filename, "urls": list(s.urls), "sha256": s.sha256, "md5": s.md5}
                        for s in entry.sources],
            "reproduction": entry.reproduction,
        })
    if args.json:
        print_json({"data_dir": str(root), "datasets": rows})
        return 0
    print(f"data directory: {root}")
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        count = f"{r['present_files']}/{r['total_files']}"
        print(f"  {r['name']:<{width}}  {r['status']:<7}  {count:>5} files  {r['description']}")
    print("(present = files exist; `metashot data verify` checks their sha256)")
    return 0


# --- download --------------------------------------------------------------------------------------


def cmd_download(args: argparse.Namespace) -> int:
    from metashot.data.install import install_dataset

    get_dataset(args.name)  # unknown name -> UsageError before any work
    result = install_dataset(
        args.name, args.data_dir, force=args.force, progress=not args.no_progress, keep_downloads=args.keep_downloads
    )
    if result.already_present:
        print(f"{args.name}: already present and verified in {result.root} (use --force to download again)")
        return 0
    for path, verdict in result.installed.items():
        print(f"installed {path}: {verdict}")
    if result.skipped:
        reasons = "; ".join(f"{p}: {r}" for p, r in result.skipped.items())
        raise DataError(f"{args.name} is incomplete in {result.root}. Not installed: {reasons}")
    print(f"{args.name}: ready in {result.root}")
    return 0


# --- verify ----------------------------------------------------------------------------------------


def cmd_verify(args: argparse.Namespace) -> int:
    names = list(dict.fromkeys(args.names)) or None
    for name in names or []:
        get_dataset(name)
    root = data_dir(args.data_dir)
    checks = verify(names, root, progress=_progress(args))
    report = summarize(checks, explicit=names is not None)
    report["data_dir"] = str(root)
    if args.json:
        print_json(report)
    else:
        print(f"data directory: {root}")
        for entry in report["datasets"]:
            print(f"{entry['name']}: {entry['status']}")
            if entry["status"] == "not downloaded":
                print(f"  (get it with `{entry['fix']}`)")
                continue
            for f in entry["files"]:
                detail = f" ({f['detail']})" if f["status"] not in ("ok", "missing") else ""
                print(f"  {f['status']:<12} {f['path']}{detail}")
            if entry["fix"]:
                print(f"  fix: {entry['fix']}")
    bad = [c for c in checks if c.failed]
    if bad:
        seen = dict.fromkeys(f"{c.path} ({c.status}: {c.detail})" for c in bad)
        fixes = " / ".join(dict.fromkeys(f"`metashot data download {c.dataset} --force`" for c in bad))
        raise ChecksumError(f"verification failed: {'; '.join(seen)}. Re-download with {fixes}")
    if report["failed"]:
        missing = dict.fromkeys(c.path for c in checks if c.status == MISSING and c.dataset in report["failed"])
        fixes = " / ".join(f"`metashot data download {n}`" for n in report["failed"])
        raise DataError(f"missing in {root}: {', '.join(missing)}. Get them with {fixes}")
    if not any(c.status != MISSING for c in checks):
        raise DataError(
            f"no dataset files found in {root}; check --data-dir / $METASHOT_DATA, "
            "or get data with `metashot data download NAME` (`metashot data list` shows the names)"
        )
    if not args.json:
        n_ok = sum(1 for c in checks if c.status.startswith("ok"))
        print(f"all present files verified ({n_ok} checks passed)")
    return 0
