"""safe_extract refuses archives that would write outside the destination, before writing anything."""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from metashot.data.download import safe_extract
from metashot.errors import DataError, UnsafeArchiveError


def _zip(path: Path, members: list[tuple[str, bytes, int | None]]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data, mode in members:
            info = zipfile.ZipInfo(name)
            if mode is not None:
                info.external_attr = mode << 16
            zf.writestr(info, data)
    return path


def _tar(path: Path, members: list[tarfile.TarInfo]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for info in members:
            data = b"x" * info.size if info.isfile() else None
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _file(name: str, size: int = 1) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    return info


def _special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


GOOD = ("ok/a.txt", b"fine", None)


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (("../evil.txt", b"x", None), r"contains '\.\.'"),
        (("ok/../../evil.txt", b"x", None), r"contains '\.\.'"),
        (("/tmp/evil.txt", b"x", None), "absolute path"),
        (("C:/evil.txt", b"x", None), "absolute path"),
        (("link", b"/etc/passwd", stat.S_IFLNK | 0o777), "symbolic link"),
        (("fifo", b"", stat.S_IFIFO | 0o644), "not a regular file"),
    ],
)
def test_zip_with_unsafe_member_is_refused_and_nothing_is_written(tmp_path, bad, match):
    archive = _zip(tmp_path / "bad.zip", [GOOD, bad])
    dest = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError, match=match):
        safe_extract(archive, dest)
    assert not dest.exists()  # checked before anything was written, the good member included
    assert not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (_file("../evil.txt"), r"contains '\.\.'"),
        (_file("/abs/evil.txt"), "absolute path"),
        (_special("sym", tarfile.SYMTYPE, "/etc/passwd"), "is a link"),
        (_special("hard", tarfile.LNKTYPE, "ok/a.txt"), "is a link"),
        (_special("dev", tarfile.CHRTYPE), "device"),
        (_special("fifo", tarfile.FIFOTYPE), "device, FIFO"),
    ],
)
def test_tar_with_unsafe_member_is_refused_and_nothing_is_written(tmp_path, bad, match):
    archive = _tar(tmp_path / "bad.tar.gz", [_file("ok/a.txt", 3), bad])
    dest = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError, match=match):
        safe_extract(archive, dest)
    assert not dest.exists()


def test_safe_zip_and_tar_extract_regular_files_and_folders(tmp_path):
    z = _zip(tmp_path / "good.zip", [GOOD, ("ok/sub/", b"", stat.S_IFDIR | 0o755), ("ok/sub/b.txt", b"b", None)])
    assert sorted(p.relative_to(tmp_path / "z").as_posix() for p in safe_extract(z, tmp_path / "z")) == [
        "ok/a.txt", "ok/sub/b.txt"
    ]
    assert (tmp_path / "z/ok/a.txt").read_bytes() == b"fine"
    dirinfo = tarfile.TarInfo("d")
    dirinfo.type = tarfile.DIRTYPE
    t = _tar(tmp_path / "good.tar.gz", [dirinfo, _file("d/c.bin", 5)])
    assert [p.name for p in safe_extract(t, tmp_path / "t")] == ["c.bin"]
    assert (tmp_path / "t/d/c.bin").read_bytes() == b"xxxxx"


def test_a_file_that_is_no_archive_is_a_data_error(tmp_path):
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not an archive at all")
    with pytest.raises(DataError, match="not a zip or tar"):
        safe_extract(junk, tmp_path / "out")
