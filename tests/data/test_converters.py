"""Converters rebuild the cached layout from official-format inputs; install runs them end to end."""

from __future__ import annotations

import gzip
import io
import itertools
import zipfile
from pathlib import Path

import numpy as np
import pytest

from metashot.cli import main
from metashot.data.converters import (
    cifar10_arrays,
    content_digest,
    omniglot_arrays,
    parse_idx,
    vinyals_split_csv,
)
from metashot.data.download import download
from metashot.data.install import install_dataset
from metashot.data.registry import DATASETS, get_dataset
from metashot.errors import ChecksumError, DataError

needs_data = pytest.mark.needs_shared_data


def _server_fetch(server):
    """A fetch function that takes every source from the local test server, by file name."""

    def fetch(urls, dest, *, sha256=None, md5=None, size=None, progress=True, **_):
        return download(server.url(dest.name), dest, sha256=sha256, md5=md5, size=size, progress=False, backoff=0)

    return fetch


# --- Omniglot ---------------------------------------------------------------------------------------


@needs_data
def test_omniglot_converter_rebuilds_the_reference_rows_from_official_style_pngs(shared_data, tmp_path):
    from PIL import Image

    with np.load(shared_data / "omniglot/omniglot_evaluation.npz") as npz:
        ref = {k: npz[k] for k in npz.files}  # NpzFile decompresses on every access: read once
    rows = np.flatnonzero(np.isin(ref["character_id"], [965, 966, 1300]))  # 2 alphabets, 60 images
    archive = tmp_path / "images_evaluation.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i in rows[::-1]:  # reversed: the converter must sort
            ink = np.unpackbits(ref["images_packed"][i], count=105 * 105).reshape(105, 105)
            png = io.BytesIO()
            Image.fromarray(((1 - ink) * 255).astype(np.uint8)).convert("1").save(png, "PNG")  # 1 = white
            alphabet = ref["alphabet_names"][ref["alphabet"][i]]
            name = f"{ref['character'][i]:02d}/{ref['character_id'][i]:04d}_{ref['drawing'][i]:02d}.png"
            zf.writestr(f"images_evaluation/{alphabet}/character{name}", png.getvalue())
    got = omniglot_arrays(archive, label_offset=965)
    for key in ("images_packed", "character_id", "label", "character", "drawing", "image_shape"):
        expected = ref[key] if key == "image_shape" else ref[key][rows]
        assert got[key].dtype == expected.dtype, key
        np.testing.assert_array_equal(got[key], expected, err_msg=key)
    assert list(got["alphabet_names"]) == ["Angelic", "Malayalam"]


@needs_data
def test_vinyals_split_csv_from_the_split_lists_equals_the_reference(shared_data):
    lists = {s: shared_data / f"splits/omniglot-vinyals/{s}.txt" for s in ("train", "val", "test")}
    with gzip.open(shared_data / "omniglot/omniglot_vinyals_split.csv.gz", "rb") as fh:
        assert vinyals_split_csv(lists).encode() == fh.read()  # bytes: line endings (CRLF) included


# --- MNIST ------------------------------------------------------------------------------------------


def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def test_parse_idx_round_trip_and_truncation():
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(parse_idx(_idx(array)), array)
    with pytest.raises(DataError, match="truncated"):
        parse_idx(_idx(array)[:-1])
    with pytest.raises(DataError, match="not a uint8 idx"):
        parse_idx(b"\x00\x00\x0d\x01" + bytes(8))


@needs_data
@pytest.mark.slow
def test_mnist_download_convert_install_verify_end_to_end(shared_data, tmp_path, http_server, capsys):
    # Rebuild the four idx files from the reference arrays (their sha256 must be the standard ones),
    # serve them gzipped, and install through the real pipeline into an empty data directory.
    with np.load(shared_data / "mnist/mnist.npz") as ref:
        parts = {"train-images-idx3": ref["x_train"], "train-labels-idx1": ref["y_train"],
                 "t10k-images-idx3": ref["x_test"], "t10k-labels-idx1": ref["y_test"]}
    for stem, array in parts.items():
        http_server.files[f"{stem}-ubyte.gz"] = gzip.compress(_idx(array), compresslevel=1)

    def fetch(urls, dest, *, progress=True, **_):  # our re-gzipped bytes differ from the official .gz
        return download(http_server.url(dest.name), dest, progress=False, backoff=0)

    root = tmp_path / "data"
    result = install_dataset("mnist", root, progress=False, fetch=fetch)
    assert set(result.installed) == {"mnist/mnist.npz"}
    assert content_digest(root / "mnist/mnist.npz") == get_dataset("mnist").files[0].content_sha256
    assert main(["data", "verify", "mnist", "--data-dir", str(root), "--no-progress"]) == 0
    again = install_dataset("mnist", root, progress=False, fetch=fetch)
    assert again.already_present
    assert not (root / ".downloads/mnist").exists()  # raw downloads removed after success
    capsys.readouterr()


# --- byte-copy datasets through the HTTP server --------------------------------------------------


@needs_data
def test_install_of_a_byte_copy_dataset_over_http_then_verify(shared_data, tmp_path, http_server, capsys):
    entry = get_dataset("miniimagenet-splits")
    for source, file in zip(entry.sources, entry.files):
        http_server.files[source.filename] = (shared_data / file.path).read_bytes()
    http_server.truncate_first = 1  # the first response is cut off: retried transparently
    root = tmp_path / "data"
    result = install_dataset("miniimagenet-splits", root, progress=False, fetch=_server_fetch(http_server))
    assert set(result.installed) == set(entry.paths)
    assert all(v == "identical to the reference copy" for v in result.installed.values())
    assert main(["data", "verify", "miniimagenet-splits", "--data-dir", str(root), "--no-progress"]) == 0
    capsys.readouterr()


@needs_data
def test_install_rejects_a_corrupt_source_and_installs_nothing(shared_data, tmp_path, http_server):
    entry = get_dataset("cifar-fs-splits")
    for source, file in zip(entry.sources, entry.files):
        http_server.files[source.filename] = (shared_data / file.path).read_bytes()
    http_server.corrupt = True
    root = tmp_path / "data"
    with pytest.raises(ChecksumError, match="sha256 mismatch"):
        install_dataset("cifar-fs-splits", root, progress=False, fetch=_server_fetch(http_server))
    assert not (root / "splits").exists()  # nothing installed
    assert not list(root.glob(".staging-*"))


# --- CIFAR-10 ----------------------------------------------------------------------------------------


def test_cifar10_binary_batches_become_hwc_train_in_order_and_test_class_sorted(tmp_path):
    rng = np.random.default_rng(0)

    def batch(path: Path, labels: list[int]) -> np.ndarray:
        images = rng.integers(0, 256, size=(len(labels), 3, 32, 32), dtype=np.uint8)  # CHW planes
        records = np.concatenate([np.array(labels, np.uint8)[:, None], images.reshape(len(labels), -1)], axis=1)
        path.write_bytes(records.tobytes())
        return images

    train = [batch(tmp_path / f"data_batch_{i}.bin", [i % 10, (i + 3) % 10]) for i in range(1, 6)]
    test_labels = [3, 1, 3, 0, 1]
    test = batch(tmp_path / "test_batch.bin", test_labels)
    arrays = cifar10_arrays(tmp_path)
    np.testing.assert_array_equal(arrays["x_train"], np.concatenate(train).transpose(0, 2, 3, 1))
    assert arrays["x_train"][0, 5, 7, 2] == train[0][0, 2, 5, 7]  # (row 5, col 7, blue)
    np.testing.assert_array_equal(arrays["y_test"], [0, 1, 1, 3, 3])
    np.testing.assert_array_equal(arrays["test_index_in_class"], [0, 0, 1, 0, 1])
    np.testing.assert_array_equal(arrays["x_test"][1], test[1].transpose(1, 2, 0))  # first class-1 image
    np.testing.assert_array_equal(arrays["x_test"][4], test[2].transpose(1, 2, 0))  # second class-3 image
    assert arrays["class_names"].dtype.str == "<U10" and arrays["class_names"][1] == "automobile"
    (tmp_path / "test_batch.bin").write_bytes(b"\x00" * 3000)
    with pytest.raises(DataError, match="truncated"):
        cifar10_arrays(tmp_path)


def test_cifar10_entry_is_honest_that_a_download_differs_from_the_jpeg_reference():
    entry = get_dataset("cifar10")
    assert entry.content_differs and "LOSSY" in entry.description and "DIFFERS BY DESIGN" in entry.reproduction


# --- ZINC properties -------------------------------------------------------------------------------


@needs_data
@pytest.mark.needs_rdkit
def test_zinc_properties_recomputed_with_rdkit_equal_the_reference_rows(shared_data):
    pytest.importorskip("rdkit")
    from metashot.data.converters import zinc_property_rows

    with gzip.open(shared_data / "zinc250k/250k_rndm_zinc_drugs_clean.smi.gz", "rt") as fh:
        smiles = [line.rstrip("\n") for line in itertools.islice(fh, 25)]
    with gzip.open(shared_data / "zinc250k/zinc250k_rdkit_props.csv.gz", "rt", newline="") as fh:
        reference = [line.removesuffix("\n") for line in itertools.islice(fh, 26)]  # LF endings
    assert reference[0] == "smiles,logP,qed,SAS"
    assert list(zinc_property_rows(smiles)) == reference[1:]


# --- registry shape ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(DATASETS))
def test_every_registry_entry_is_complete(name):
    from metashot.data.converters import CONVERTERS

    entry = get_dataset(name)
    assert entry.files and entry.sources and entry.licence and entry.converter in CONVERTERS
    for f in entry.files:
        assert len(f.sha256) == 64 and f.size > 0 and not f.path.startswith("/")
    for s in entry.sources:
        assert s.urls and all(u.startswith(("https://", "http://")) for u in s.urls)
        assert s.sha256 or s.md5 or "not recorded" in s.note, f"{s.filename}: say why no checksum is known"
