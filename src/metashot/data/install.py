"""``metashot data download NAME``: download the official sources, convert, verify, install.

Steps: (1) each :class:`~metashot.data.registry.Source` is downloaded (checksummed, resumable)
into ``<data dir>/.downloads/<name>/``; (2) the dataset's converter writes its files into a
staging folder beside the data; (3) each produced file is checked: its sha256 equals the
reference copy's, or else its content digest equals the registry's ``content_sha256`` (the zip or
gzip bytes differ between zlib builds), or else -- only for datasets marked ``content_differs``
(CIFAR-10) -- the difference is expected and recorded; anything else aborts with ChecksumError
and installs nothing; (4) the files are moved into place with ``os.replace`` and converted files
are recorded in the manifest so that ``metashot data verify`` accepts them later.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from metashot.data.converters import CONVERTERS, content_digest, convert_copy
from metashot.data.download import download, sha256_file
from metashot.data.paths import data_dir
from metashot.data.registry import DataFile, get_dataset
from metashot.data.verify import OK, read_manifest, verify, write_manifest
from metashot.errors import ChecksumError, DataError

log = logging.getLogger(__name__)


@dataclass
class InstallResult:
    name: str
    root: Path
    already_present: bool = False
    installed: dict[str, str] = field(default_factory=dict)  # path -> "identical" | "same content" | note
    skipped: dict[str, str] = field(default_factory=dict)  # path -> reason


def install_dataset(
    name: str,
    root: str | os.PathLike[str] | None = None,
    *,
    force: bool = False,
    progress: bool = True,
    keep_downloads: bool = False,
    fetch: Callable[..., Path] = download,
) -> InstallResult:
    """Make dataset ``name`` present and verified in the data directory."""
    entry = get_dataset(name)
    base = data_dir(root)
    result = InstallResult(name=name, root=base)
    if not force and all(c.status.startswith(OK) for c in verify([name], base)):
        result.already_present = True
        return result
    try:
        base.mkdir(parents=True, exist_ok=True)
        downloads = base / ".downloads" / name
        downloads.mkdir(parents=True, exist_ok=True)
        staging = base / f".staging-{name}-{uuid.uuid4().hex[:8]}"
        staging.mkdir()
    except PermissionError as exc:
        raise DataError(f"cannot write into the data directory {base} ({exc.strerror}); choose another --data-dir") from None
    try:
        paths = {
            s.filename: fetch(s.urls, downloads / s.filename, sha256=s.sha256, md5=s.md5, size=s.size, progress=progress)
            for s in entry.sources
        }
        converter = CONVERTERS[entry.converter]
        if converter is convert_copy:
            converter = functools.partial(convert_copy, dataset=name)
        result.skipped = converter(paths, staging, progress=progress)
        manifest = read_manifest(base)
        verdicts = {}
        for file in entry.files:
            if file.path in result.skipped:
                continue
            produced = staging / file.path
            if not produced.is_file():
                raise DataError(f"converter for {name!r} did not produce {file.path}; please report this")
            verdicts[file.path] = _judge(entry.content_differs, file, produced)
        for rel, (verdict, record) in verdicts.items():
            (base / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / rel, base / rel)
            result.installed[rel] = verdict
            if record is None:
                manifest.pop(rel, None)
            else:
                manifest[rel] = {**record, "dataset": name}
        write_manifest(base, manifest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if not keep_downloads and not result.skipped:
        shutil.rmtree(downloads, ignore_errors=True)
        with contextlib.suppress(OSError):
            downloads.parent.rmdir()  # only if empty
    return result


def _judge(content_differs: bool, file: DataFile, produced: Path) -> tuple[str, dict[str, Any] | None]:
    """How a converted file compares with the reference copy; ChecksumError if unacceptably."""
    sha = sha256_file(produced)
    if sha == file.sha256:
        return "identical to the reference copy", None
    digest = content_digest(produced)
    record = {"sha256": sha, "size": produced.stat().st_size, "content_sha256": digest}
    if file.content_sha256 and digest == file.content_sha256:
        note = "converted from the official source; same content as the reference copy (container bytes differ)"
        return note, {**record, "note": note}
    if content_differs:
        note = "converted from the official source; content differs from the reference copy by design (see registry)"
        return note, {**record, "note": note}
    raise ChecksumError(
        f"{file.path}: converted content digest {digest} does not match the expected {file.content_sha256}; "
        "the official source may have changed. Nothing was installed"
    )
