"""CIFAR-10 from ``cifar10/cifar10_jpeg.npz`` in the data directory (layout of ``shared/data``).

Keys (see the data README): ``x_train`` (50000, 32, 32, 3) uint8 HWC RGB in the standard order,
``y_train`` (50000,) uint8, ``x_test`` (10000, 32, 32, 3) uint8 **class-sorted** (not the standard
test order), ``y_test`` (10000,) uint8, ``test_index_in_class`` (10000,) int16, ``class_names``.

.. warning::
   The reference copy was rebuilt from JPEG files, so its pixels are **not** the original CIFAR-10
   bytes (mean absolute error 4.5-8.1 per pixel on a 0-255 scale). It is fine for comparing
   optimizers or pipelines, not for numbers meant to be compared with published CIFAR-10 results.
   ``metashot data download cifar10`` writes the lossless original in the same layout and file name.
"""

from __future__ import annotations

import os

import numpy as np

from metashot.data.npz import read_split
from metashot.data.paths import dataset_file
from metashot.errors import DataError

RELPATH = "cifar10/cifar10_jpeg.npz"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
_SIZES = {"train": 50000, "test": 10000}
_FIX = "re-download with `metashot data download cifar10` (check it with `metashot data verify cifar10`)"


def load_cifar10(
    split: str = "train", *, root: str | os.PathLike[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(images, labels)`` of one split: ``(N, 32, 32, 3)`` uint8 HWC RGB and ``(N,)`` uint8 0-9.

    ``N`` is 50000 (train, standard order) or 10000 (test, sorted by class). Labels index
    :data:`CLASSES`.

    Raises:
        DataError: the file is missing (the message names the download command), unreadable
            (truncated or corrupt), or has unexpected keys, shapes, dtypes or label values.
    """
    if split not in _SIZES:
        raise DataError(f"unknown CIFAR-10 split {split!r}; use 'train' or 'test'")
    path = dataset_file(RELPATH, dataset="cifar10", root=root)
    n = _SIZES[split]
    images, labels = read_split(path, split, image_shape=(32, 32, 3), size=n, name="CIFAR-10", fix=_FIX)
    counts = np.bincount(labels, minlength=10)
    if len(counts) > 10 or (counts != n // 10).any():
        raise DataError(
            f"{path}: y_{split} has label counts {counts.tolist()}, expected {n // 10} of each of 0-9; {_FIX}"
        )
    return images, labels
