"""Downloads and archive extraction: streamed, retried, resumed, checksummed, atomic, safe.

- :func:`download` fetches one file from a list of mirror URLs into ``dest``. Bytes stream into
  ``dest.part`` with a tqdm progress bar; a connection that ends before ``Content-Length`` bytes
  arrived (a truncated download) is retried with exponential backoff, resuming with an HTTP
  ``Range`` request when the server honours it and restarting from zero when it does not. The
  finished file's size, sha256 and/or md5 are checked before it is renamed into place with
  ``os.replace``, so ``dest`` is either absent or complete and verified.
- :func:`safe_extract` unpacks a zip or tar archive, refusing (before writing anything) members
  with absolute paths, ``..`` components, symbolic or hard links, and device/FIFO entries.
- :func:`sha256_file` hashes large files in 1 MiB chunks, optionally with a progress bar.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import stat
import sys
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath

from tqdm.auto import tqdm

from metashot.errors import ChecksumError, DataError, DownloadError, UnsafeArchiveError

log = logging.getLogger(__name__)

CHUNK = 1 << 20
USER_AGENT = "metashot-data/0.1 (+https://github.com/metashot)"
_NO_RETRY_HTTP = {400, 401, 403, 404, 410, 451}  # permanent: try the next mirror at once


# --- hashing ----------------------------------------------------------------------------------------


def file_digest(
    path: str | os.PathLike[str], algorithm: str = "sha256", *, progress: bool = False, desc: str = ""
) -> str:
    """Hex digest of a file, read in 1 MiB chunks (constant memory for large files)."""
    path = Path(path)
    digest = hashlib.new(algorithm)
    with (
        open(path, "rb") as fh,
        tqdm(
            total=path.stat().st_size, unit="B", unit_scale=True, desc=desc or path.name,
            disable=not progress, file=sys.stderr, leave=False,
        ) as bar,
    ):
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


def sha256_file(path: str | os.PathLike[str], *, progress: bool = False, desc: str = "") -> str:
    """sha256 hex digest of a file, streamed."""
    return file_digest(path, "sha256", progress=progress, desc=desc)


def check_file(
    path: Path, *, sha256: str | None = None, md5: str | None = None, size: int | None = None, label: str = ""
) -> None:
    """Raise :class:`ChecksumError` (size first: it names truncation) unless ``path`` matches."""
    label = label or str(path)
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        kind = "truncated" if actual_size < size else "too long"
        raise ChecksumError(f"{label}: {kind}: {actual_size} bytes, expected {size}")
    for algorithm, expected in (("sha256", sha256), ("md5", md5)):
        if expected:
            actual = file_digest(path, algorithm)
            if actual != expected.lower():
                raise ChecksumError(f"{label}: {algorithm} mismatch: got {actual}, expected {expected}")


# --- download ---------------------------------------------------------------------------------------


class _Retry(Exception):
    """A transient failure: try again (same URL) after a pause."""


def download(
    urls: str | Sequence[str],
    dest: str | os.PathLike[str],
    *,
    sha256: str | None = None,
    md5: str | None = None,
    size: int | None = None,
    retries: int = 4,
    backoff: float = 1.0,
    timeout: float = 60.0,
    progress: bool = True,
    sleep: Callable[[float], None] = time.sleep,
) -> Path:
    """Download the first working URL of ``urls`` to ``dest`` and verify it; return ``dest``.

    An existing ``dest`` that already matches the checksums is kept (no network). Each URL is
    tried ``retries + 1`` times; the pause before retry ``k`` is ``backoff * 2**(k-1)`` seconds.
    HTTP 4xx answers (e.g. 404) move on to the next URL at once.

    Raises:
        ChecksumError: the downloaded bytes never matched ``sha256``/``md5``/``size``.
        DownloadError: no URL could be read completely.
    """
    urls = [urls] if isinstance(urls, str) else list(urls)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_file():
        try:
            check_file(dest, sha256=sha256, md5=md5, size=size)
            log.info("%s: already present and verified", dest)
            return dest
        except ChecksumError as exc:
            log.warning("%s; downloading again", exc)
    part = dest.with_name(dest.name + ".part")
    failures: list[str] = []
    checksum_error: ChecksumError | None = None
    for url in urls:
        for attempt in range(retries + 1):
            if attempt:
                pause = backoff * 2 ** (attempt - 1)
                log.info("retrying %s in %.1f s (attempt %d of %d)", url, pause, attempt + 1, retries + 1)
                sleep(pause)
            try:
                _fetch(url, part, timeout=timeout, progress=progress, expected_size=size)
                check_file(part, sha256=sha256, md5=md5, size=size, label=f"{dest.name} from {url}")
            except ChecksumError as exc:
                # Complete but wrong bytes: corrupted in transit or a changed file. Start afresh.
                log.warning("%s", exc)
                checksum_error = exc
                part.unlink(missing_ok=True)
                continue
            except _Retry as exc:
                log.warning("%s: %s", url, exc)
                failures.append(f"{url}: {exc}")
                continue
            except urllib.error.HTTPError as exc:
                failures.append(f"{url}: HTTP {exc.code} {exc.reason}")
                if exc.code in _NO_RETRY_HTTP:
                    break
                continue
            except (urllib.error.URLError, OSError, TimeoutError) as exc:
                reason = getattr(exc, "reason", exc)
                log.warning("%s: %s", url, reason)
                failures.append(f"{url}: {reason}")
                continue
            os.replace(part, dest)
            return dest
    part.unlink(missing_ok=True)
    if checksum_error is not None:
        raise ChecksumError(f"{checksum_error}; the download was rejected and deleted")
    last = failures[-1] if failures else "no URL given"
    raise DownloadError(
        f"could not download {dest.name} ({len(failures)} failed attempts; last: {last}). "
        f"Check the network, or fetch it by hand from {urls[0] if urls else '?'} into {dest} and rerun"
    )


def _fetch(url: str, part: Path, *, timeout: float, progress: bool, expected_size: int | None) -> None:
    """One attempt: stream ``url`` into ``part``, resuming a previous partial file if possible.

    Raises _Retry when the connection ends before the announced length (truncation); the partial
    file is kept so the next attempt can resume it.
    """
    have = part.stat().st_size if part.exists() else 0
    if expected_size is not None and have >= expected_size:
        part.unlink()  # complete-looking leftovers that failed the checksum: never trust them
        have = 0
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if have and url.startswith(("http://", "https://")):
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416:  # our range is past the end: the partial file is wrong, restart
            part.unlink(missing_ok=True)
            raise _Retry("server refused the resume range; restarting from zero") from None
        if exc.code >= 500 or exc.code in (408, 429):
            raise _Retry(f"HTTP {exc.code} {exc.reason}") from None
        raise
    with response:
        status = getattr(response, "status", 200)
        length = response.headers.get("Content-Length")
        if status == 206:
            start, total = _content_range(response.headers.get("Content-Range", ""))
            if start != have:
                part.unlink(missing_ok=True)
                raise _Retry(f"server resumed at byte {start}, not {have}; restarting")
            mode = "ab"
        else:
            have, mode = 0, "wb"  # the server ignored Range (or this is the first try): start over
            total = int(length) if length is not None else None
        if total is None and expected_size is not None:
            total = expected_size
        received = have
        with (
            open(part, mode) as fh,
            tqdm(
                total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024,
                desc=part.name.removesuffix(".part"), disable=not progress, file=sys.stderr, leave=False,
            ) as bar,
        ):
            while True:
                try:
                    chunk = response.read(CHUNK)
                except (ConnectionError, TimeoutError, OSError) as exc:
                    raise _Retry(f"connection lost after {received} bytes ({exc})") from None
                except Exception as exc:  # http.client.IncompleteRead and friends
                    raise _Retry(f"connection lost after {received} bytes ({type(exc).__name__})") from None
                if not chunk:
                    break
                fh.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
            fh.flush()
            os.fsync(fh.fileno())
    if total is not None and received < total:
        raise _Retry(f"truncated: received {received} of {total} bytes")
    if total is not None and received > total:
        part.unlink(missing_ok=True)
        raise _Retry(f"received {received} bytes, more than the announced {total}; restarting")


def _content_range(value: str) -> tuple[int, int | None]:
    """Parse ``bytes START-END/TOTAL`` -> (START, TOTAL or None)."""
    try:
        unit, _, rest = value.partition(" ")
        span, _, total = rest.partition("/")
        start = int(span.split("-")[0])
        return start, (int(total) if total and total != "*" else None)
    except ValueError:
        raise _Retry(f"unparsable Content-Range {value!r}") from None


# --- safe extraction --------------------------------------------------------------------------------


def _check_member_name(archive: Path, name: str) -> PurePosixPath:
    """The member's relative path; UnsafeArchiveError for absolute paths or '..' components."""
    posix = name.replace("\\", "/")
    if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":") or not posix.strip("/"):
        raise UnsafeArchiveError(f"{archive.name}: member {name!r} has an absolute path; refusing to extract")
    parts = PurePosixPath(posix).parts
    if ".." in parts:
        raise UnsafeArchiveError(f"{archive.name}: member {name!r} contains '..'; refusing to extract")
    return PurePosixPath(*[p for p in parts if p not in ("", ".")])


def safe_extract(archive: str | os.PathLike[str], dest: str | os.PathLike[str]) -> list[Path]:
    """Extract a zip or tar archive (any compression) into ``dest``; return the files written.

    Every member is checked before anything is written: absolute paths, ``..`` components,
    symbolic links, hard links and device/FIFO/socket entries raise :class:`UnsafeArchiveError`.
    Only regular files and folders are created; permissions are not copied.
    """
    archive, dest = Path(archive), Path(dest)
    if zipfile.is_zipfile(archive):
        return _extract_zip(archive, dest)
    if tarfile.is_tarfile(archive):
        return _extract_tar(archive, dest)
    raise DataError(f"{archive}: not a zip or tar archive (truncated or wrong file?); delete it and retry")


def _extract_zip(archive: Path, dest: Path) -> list[Path]:
    with zipfile.ZipFile(archive) as zf:
        plan: list[tuple[zipfile.ZipInfo, PurePosixPath]] = []
        for info in zf.infolist():
            rel = _check_member_name(archive, info.filename)
            mode = info.external_attr >> 16
            if mode and stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
                kind = "a symbolic link" if stat.S_ISLNK(mode) else "not a regular file"
                raise UnsafeArchiveError(f"{archive.name}: member {info.filename!r} is {kind}; refusing to extract")
            plan.append((info, rel))
        written = []
        for info, rel in plan:
            target = dest.joinpath(*rel.parts)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out, CHUNK)
            written.append(target)
    return written


def _extract_tar(archive: Path, dest: Path) -> list[Path]:
    with tarfile.open(archive) as tf:
        members = tf.getmembers()
        for m in members:
            _check_member_name(archive, m.name)
            if m.issym() or m.islnk():
                raise UnsafeArchiveError(f"{archive.name}: member {m.name!r} is a link; refusing to extract")
            if not (m.isfile() or m.isdir()):
                raise UnsafeArchiveError(
                    f"{archive.name}: member {m.name!r} is a device, FIFO or other special file; refusing to extract"
                )
        written = []
        for m in members:
            target = dest.joinpath(*_check_member_name(archive, m.name).parts)
            if m.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            src = tf.extractfile(m)
            assert src is not None  # regular file
            with src, open(target, "wb") as out:
                shutil.copyfileobj(src, out, CHUNK)
            written.append(target)
    return written
