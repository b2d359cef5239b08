"""The CIFAR-10 loader: the real (JPEG-derived) copy, and clear errors for broken files."""

from __future__ import annotations

import io

import numpy as np
import pytest

from metashot.data.cifar10 import CLASSES, RELPATH, load_cifar10
from metashot.errors import DataError


@pytest.mark.needs_shared_data
def test_real_cifar10_has_the_documented_layout(shared_data):
    x, y = load_cifar10("train", root=shared_data)
    assert x.shape == (50000, 32, 32, 3) and x.dtype == np.uint8 and y.dtype == np.uint8
    assert np.bincount(y).tolist() == [5000] * 10
    assert CLASSES[int(y[0])] == "frog"  # data_batch_1 image 0 (README check)
    assert x[0, 0, :3, 0].tolist() == [61, 48, 56]  # its R channel starts 61, 48, 56 (JPEG-derived)
    # The README's train per-channel means of this copy: 125.27 / 122.93 / 113.86.
    np.testing.assert_allclose(x[::50].reshape(-1, 3).mean(0), [125.27, 122.93, 113.86], atol=2.0)
    x_test, y_test = load_cifar10("test", root=shared_data)
    assert x_test.shape == (10000, 32, 32, 3)
    assert (np.diff(y_test.astype(int)) >= 0).all()  # class-sorted, not the standard order


def _write_fake(root, n_train=50000, *, n_test=10000, label_value=None, noise=False):
    (root / "cifar10").mkdir(parents=True, exist_ok=True)
    y_train = np.repeat(np.arange(10, dtype=np.uint8), n_train // 10)
    if label_value is not None:
        y_train[:] = label_value
    x_train = np.zeros((n_train, 32, 32, 3), np.uint8)
    if noise:  # incompressible, so the middle of the file is inside x_train's stream
        x_train = np.random.default_rng(0).integers(0, 256, x_train.shape, dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        x_train=x_train, y_train=y_train,
        x_test=np.zeros((n_test, 32, 32, 3), np.uint8), y_test=np.repeat(np.arange(10, dtype=np.uint8), n_test // 10),
    )
    data = buffer.getvalue()
    (root / RELPATH).write_bytes(data)
    return data


def test_missing_file_names_the_download_command(tmp_path):
    with pytest.raises(DataError, match="metashot data download cifar10"):
        load_cifar10("train", root=tmp_path)


def test_truncated_file_is_a_clear_data_error(tmp_path):
    data = _write_fake(tmp_path)
    (tmp_path / RELPATH).write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"unreadable, truncated or corrupt.*metashot data download cifar10"):
        load_cifar10("train", root=tmp_path)


def test_corrupt_bytes_are_a_clear_data_error(tmp_path):
    data = bytearray(_write_fake(tmp_path, n_train=100, n_test=10, noise=True))
    middle = len(data) // 2  # inside x_train's compressed stream: a CRC / zlib failure on reading
    data[middle : middle + 64] = bytes(64)
    (tmp_path / RELPATH).write_bytes(bytes(data))
    with pytest.raises(DataError, match="metashot data download cifar10"):
        load_cifar10("train", root=tmp_path)


def test_wrong_shapes_and_labels_are_rejected(tmp_path):
    _write_fake(tmp_path, n_train=100)
    with pytest.raises(DataError, match=r"x_train has shape \(100, 32, 32, 3\) uint8, expected \(50000, 32, 32, 3\)"):
        load_cifar10("train", root=tmp_path)
    _write_fake(tmp_path, label_value=3)
    with pytest.raises(DataError, match="label counts"):
        load_cifar10("train", root=tmp_path)
    with pytest.raises(DataError, match="unknown CIFAR-10 split 'val'"):
        load_cifar10("val", root=tmp_path)
