"""Reading one split of an image-classification ``.npz`` (``x_SPLIT`` images, ``y_SPLIT`` labels), checked."""

from __future__ import annotations

import os
import zipfile
import zlib

import numpy as np

from metashot.errors import DataError


def read_split(
    path: str | os.PathLike[str], split: str, *, image_shape: tuple[int, ...], size: int, name: str, fix: str
) -> tuple[np.ndarray, np.ndarray]:
    """``(images, labels)`` = ``x_SPLIT`` ``(size, *image_shape)`` uint8 and ``y_SPLIT`` ``(size,)`` uint8.

    Raises:
        DataError: missing arrays, an unreadable (truncated or corrupt) file, or unexpected shapes or
            dtypes; every message names ``path`` and ends with ``fix`` (what to do about it).
    """
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = {f"x_{split}", f"y_{split}"} - set(archive.files)
            if missing:
                raise DataError(f"{path}: missing arrays {sorted(missing)}; not the expected {name} npz; {fix}")
            images, labels = archive[f"x_{split}"], archive[f"y_{split}"]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataError(f"{path}: unreadable, truncated or corrupt ({exc}); {fix}") from None
    expected = (size, *image_shape)
    if images.shape != expected or images.dtype != np.uint8:
        raise DataError(
            f"{path}: x_{split} has shape {images.shape} {images.dtype}, expected {expected} uint8; {fix}"
        )
    if labels.shape != (size,) or labels.dtype != np.uint8:
        raise DataError(f"{path}: y_{split} has shape {labels.shape} {labels.dtype}, expected ({size},) uint8; {fix}")
    return images, labels
