"""Checksums of a data directory against the registry (``metashot data verify``).

A file is accepted when its sha256 equals the reference copy's (the registry), or when it was
written by ``metashot data download`` from the official sources and still has the sha256 recorded
then in the data directory's manifest (``.metashot-manifest.json``): such converted files were
checked by content digest at conversion time (see :mod:`metashot.data.registry`).
Size is compared first, so a truncated file is named as truncated without hashing it.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from metashot.config import save_json
from metashot.data.download import CHUNK
from metashot.data.paths import data_dir
from metashot.data.registry import DATASETS, DataFile, get_dataset

MANIFEST = ".metashot-manifest.json"

OK, CONVERTED, MISSING, TRUNCATED, CORRUPT = "ok", "ok-converted", "missing", "truncated", "corrupt"


@dataclass
class FileCheck:
    """The verdict on one file."""

    dataset: str
    path: str  # relative to the data directory
    status: str  # ok | ok-converted | missing | truncated | corrupt
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.status in (TRUNCATED, CORRUPT)


# --- manifest --------------------------------------------------------------------------------------


def read_manifest(root: Path) -> dict[str, dict[str, Any]]:
    """``{relative path: {"sha256", "size", "content_sha256", "dataset", "note"}}`` of converted files."""
    path = root / MANIFEST
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return data.get("files", {}) if isinstance(data, dict) else {}


def write_manifest(root: Path, files: dict[str, dict[str, Any]]) -> None:
    save_json(root / MANIFEST, {"format": 1, "files": dict(sorted(files.items()))})


# --- verification ----------------------------------------------------------------------------------


def present_files(name: str, root: str | os.PathLike[str] | None = None) -> list[str]:
    """Registry paths of dataset ``name`` that exist in the data directory (no hashing)."""
    base = data_dir(root)
    return [f.path for f in get_dataset(name).files if (base / f.path).is_file()]


def verify(
    names: list[str] | None = None, root: str | os.PathLike[str] | None = None, *, progress: bool = False
) -> list[FileCheck]:
    """Check every file of the datasets ``names`` (default: all) in the data directory.

    Returns one :class:`FileCheck` per (dataset, file); a file shared by two datasets is hashed once.
    """
    base = data_dir(root)
    entries = [get_dataset(n) for n in (names or list(DATASETS))]
    manifest = read_manifest(base)
    unique: dict[str, DataFile] = {f.path: f for e in entries for f in e.files}
    to_hash = [f for f in unique.values() if (base / f.path).is_file()]
    total = sum((base / f.path).stat().st_size for f in to_hash)
    verdicts: dict[str, tuple[str, str]] = {}
    with tqdm(
        total=total, unit="B", unit_scale=True, unit_divisor=1024, desc="verify",
        disable=not progress, file=sys.stderr, leave=False,
    ) as bar:
        for file in unique.values():
            verdicts[file.path] = _check(base, file, manifest.get(file.path), bar)
    return [FileCheck(e.name, f.path, *verdicts[f.path]) for e in entries for f in e.files]


def _check(base: Path, file: DataFile, recorded: dict[str, Any] | None, bar: tqdm) -> tuple[str, str]:
    path = base / file.path
    if not path.is_file():
        return MISSING, "not in the data directory"
    size = path.stat().st_size
    # A converted file (recorded in the manifest) may legitimately differ in size from the reference.
    expected = int(recorded["size"]) if recorded and "size" in recorded else file.size
    if size not in (file.size, expected):
        bar.update(size)
        kind = TRUNCATED if size < expected else CORRUPT
        return kind, f"{size} bytes, expected {expected}"
    actual = _sha256(path, bar)
    if actual == file.sha256:
        return OK, "sha256 matches the reference copy"
    if recorded and actual == recorded.get("sha256"):
        return CONVERTED, recorded.get("note", "converted from the official source; content verified then")
    return CORRUPT, f"sha256 {actual} does not match the expected {file.sha256}"


def _sha256(path: Path, bar: tqdm) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


def summarize(checks: list[FileCheck], *, explicit: bool) -> dict[str, Any]:
    """Per-dataset verdicts and the overall outcome.

    A dataset fails when any of its files is corrupt or truncated, or when some (or, if it was
    named explicitly, all) of its files are missing. A dataset that is entirely absent and was not
    named is reported as not downloaded, which is not a failure.
    """
    datasets: dict[str, dict[str, Any]] = {}
    for check in checks:
        entry = datasets.setdefault(check.dataset, {"name": check.dataset, "files": []})
        entry["files"].append(asdict(check))
    owners: dict[str, int] = {}
    for check in checks:
        owners[check.path] = owners.get(check.path, 0) + 1
    failed = []
    for name, entry in datasets.items():
        statuses = [f["status"] for f in entry["files"]]
        missing = statuses.count(MISSING)
        # A file shared with another dataset (a licence) does not make this one "present".
        own = [f["status"] for f in entry["files"] if owners[f["path"]] == 1] or statuses
        if any(s in (TRUNCATED, CORRUPT) for s in statuses):
            entry["status"] = "failed"
        elif missing == len(statuses) or own.count(MISSING) == len(own):
            entry["status"] = "failed" if explicit else "not downloaded"
        elif missing:
            entry["status"] = "incomplete"
        else:
            entry["status"] = "ok"
        if entry["status"] in ("failed", "incomplete"):
            failed.append(name)
        entry["fix"] = f"metashot data download {name}" if entry["status"] != "ok" else None
    return {"ok": not failed, "failed": failed, "datasets": list(datasets.values())}
