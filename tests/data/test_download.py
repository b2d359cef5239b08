"""The real download code against a local HTTP server serving a tiny archive built here."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest

from metashot.data.download import download, safe_extract
from metashot.errors import ChecksumError, DownloadError


def _tiny_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("tiny/hello.txt", "hello metashot\n")
        zf.writestr("tiny/numbers.bin", bytes(range(256)) * 64)  # 16 KiB: big enough to truncate
    return buffer.getvalue()


ARCHIVE = _tiny_zip()
SHA = hashlib.sha256(ARCHIVE).hexdigest()
MD5 = hashlib.md5(ARCHIVE).hexdigest()


def _get(urls, dest, **kw):
    kw.setdefault("backoff", 0.0)
    kw.setdefault("progress", False)
    return download(urls, dest, **kw)


def test_download_with_matching_sha256_writes_the_file_atomically_and_it_extracts(http_server, tmp_path):
    http_server.files["tiny.zip"] = ARCHIVE
    dest = _get(http_server.url("tiny.zip"), tmp_path / "dl" / "tiny.zip", sha256=SHA, md5=MD5, size=len(ARCHIVE))
    assert dest.read_bytes() == ARCHIVE
    assert sorted(p.name for p in dest.parent.iterdir()) == ["tiny.zip"]  # no .part left behind
    written = safe_extract(dest, tmp_path / "out")
    assert (tmp_path / "out/tiny/hello.txt").read_text() == "hello metashot\n"
    assert len(written) == 2


def test_corrupted_payload_is_rejected_and_nothing_is_left(http_server, tmp_path):
    http_server.files["tiny.zip"] = ARCHIVE
    http_server.corrupt = True
    dest = tmp_path / "tiny.zip"
    with pytest.raises(ChecksumError, match="sha256 mismatch"):
        _get(http_server.url("tiny.zip"), dest, sha256=SHA, retries=1)
    assert not dest.exists() and not (tmp_path / "tiny.zip.part").exists()
    assert len(http_server.requests) == 2  # the corrupt file was fetched again once, then rejected


def test_truncated_first_response_is_detected_and_resumed_with_a_range_request(http_server, tmp_path):
    http_server.files["tiny.zip"] = ARCHIVE
    http_server.truncate_first = 1
    dest = _get(http_server.url("tiny.zip"), tmp_path / "tiny.zip", sha256=SHA)
    assert dest.read_bytes() == ARCHIVE
    assert len(http_server.requests) == 2
    first, second = http_server.requests
    assert first[1] is None
    assert second[1] == f"bytes={len(ARCHIVE) // 2}-"  # resumed where the cut happened


def test_truncated_response_restarts_when_the_server_ignores_range(http_server, tmp_path):
    http_server.files["tiny.zip"] = ARCHIVE
    http_server.truncate_first = 2
    http_server.support_range = False
    dest = _get(http_server.url("tiny.zip"), tmp_path / "tiny.zip", sha256=SHA, retries=3)
    assert dest.read_bytes() == ARCHIVE
    assert len(http_server.requests) == 3


def test_truncation_on_every_attempt_raises_download_error_naming_truncation(http_server, tmp_path):
    http_server.files["tiny.zip"] = ARCHIVE
    http_server.truncate_first = 100
    http_server.support_range = False
    with pytest.raises(DownloadError, match="truncated"):
        _get(http_server.url("tiny.zip"), tmp_path / "tiny.zip", sha256=SHA, retries=2)
    assert not (tmp_path / "tiny.zip").exists()


def test_missing_mirror_falls_through_to_the_next_url_without_retrying(http_server, tmp_path):
    http_server.files["tiny.zip"] = ARCHIVE
    urls = [http_server.url("gone.zip"), http_server.url("tiny.zip")]
    dest = _get(urls, tmp_path / "tiny.zip", sha256=SHA, retries=3)
    assert dest.read_bytes() == ARCHIVE
    assert [name for name, _ in http_server.requests] == ["gone.zip", "tiny.zip"]


def test_retries_back_off_exponentially(http_server, tmp_path):
    http_server.files["tiny.zip"] = ARCHIVE
    http_server.truncate_first = 3
    http_server.support_range = False
    pauses: list[float] = []
    download(http_server.url("tiny.zip"), tmp_path / "t.zip", sha256=SHA, retries=3, backoff=0.5,
             progress=False, sleep=pauses.append)
    assert pauses == [0.5, 1.0, 2.0]


def test_an_existing_verified_file_is_not_downloaded_again(http_server, tmp_path):
    dest = tmp_path / "tiny.zip"
    dest.write_bytes(ARCHIVE)
    _get(http_server.url("tiny.zip"), dest, sha256=SHA)
    assert http_server.requests == []


def test_an_existing_corrupt_file_is_replaced(http_server, tmp_path):
    http_server.files["tiny.zip"] = ARCHIVE
    dest = tmp_path / "tiny.zip"
    dest.write_bytes(b"garbage")
    _get(http_server.url("tiny.zip"), dest, sha256=SHA)
    assert dest.read_bytes() == ARCHIVE


def test_unreachable_host_raises_download_error_with_the_manual_fix(tmp_path: Path):
    # Port 9 (discard) on localhost: connection refused, quickly.
    with pytest.raises(DownloadError, match="fetch it by hand"):
        _get("http://127.0.0.1:9/x.zip", tmp_path / "x.zip", sha256=SHA, retries=1, timeout=2)
