"""MNIST from ``mnist/mnist.npz`` in the data directory (layout of ``shared/data``; see its README).

Keys: ``x_train`` (60000, 28, 28) uint8, ``y_train`` (60000,) uint8, ``x_test`` (10000, 28, 28)
uint8, ``y_test`` (10000,) uint8, in the original order.
"""

from __future__ import annotations

import os
import zipfile

import numpy as np

from metashot.data.paths import dataset_file
from metashot.errors import DataError

RELPATH = "mnist/mnist.npz"
_SIZES = {"train": 60000, "test": 10000}


def load_mnist(
    split: str = "train", *, root: str | os.PathLike[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(images, labels)`` of one split: ``(N, 28, 28)`` uint8 0-255 and ``(N,)`` uint8 0-9.

    Raises:
        DataError: the file is missing (the message names the fix), unreadable, or has unexpected
            keys, shapes, dtypes or label values.
    """
    if split not in _SIZES:
        raise DataError(f"unknown MNIST split {split!r}; use 'train' or 'test'")
    path = dataset_file(RELPATH, dataset="mnist", root=root)
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = {f"x_{split}", f"y_{split}"} - set(archive.files)
            if missing:
                raise DataError(f"{path}: missing arrays {sorted(missing)}; the file is not the expected MNIST npz")
            images, labels = archive[f"x_{split}"], archive[f"y_{split}"]
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: unreadable ({exc}); re-download with `metashot data download mnist`") from None
    n = _SIZES[split]
    if images.shape != (n, 28, 28) or images.dtype != np.uint8:
        raise DataError(f"{path}: x_{split} has shape {images.shape} {images.dtype}, expected ({n}, 28, 28) uint8")
    if labels.shape != (n,) or labels.dtype != np.uint8:
        raise DataError(f"{path}: y_{split} has shape {labels.shape} {labels.dtype}, expected ({n},) uint8")
    if labels.max() > 9:
        raise DataError(f"{path}: y_{split} has label {int(labels.max())} > 9")
    return images, labels
