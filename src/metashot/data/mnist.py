"""MNIST from ``mnist/mnist.npz`` in the data directory (layout of ``shared/data``; see its README).

Keys: ``x_train`` (60000, 28, 28) uint8, ``y_train`` (60000,) uint8, ``x_test`` (10000, 28, 28)
uint8, ``y_test`` (10000,) uint8, in the original order.
"""

from __future__ import annotations

import os

import numpy as np

from metashot.data.npz import read_split
from metashot.data.paths import dataset_file
from metashot.errors import DataError

RELPATH = "mnist/mnist.npz"
_SIZES = {"train": 60000, "test": 10000}
_FIX = "re-download with `metashot data download mnist` (check it with `metashot data verify mnist`)"


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
    images, labels = read_split(path, split, image_shape=(28, 28), size=_SIZES[split], name="MNIST", fix=_FIX)
    if labels.max() > 9:
        raise DataError(f"{path}: y_{split} has label {int(labels.max())} > 9; {_FIX}")
    return images, labels
