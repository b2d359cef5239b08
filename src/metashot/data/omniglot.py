"""Omniglot (Lake et al. 2015) at 28x28, with the Vinyals split (rotations) or the original one.

Reads the arrays of the data directory (layout of ``shared/data``, see its README):

- ``omniglot/omniglot_background.npz`` and ``omniglot/omniglot_evaluation.npz``: 105x105 binary
  images bit-packed, one row per drawing (bit 1 = ink);
- ``omniglot/omniglot_vinyals_split.csv.gz``: ``alphabet,character,split`` with split one of
  train (1028 characters), val (172), test (423); train+val are the paper's 1200 training characters.

The 105x105 images are resized once to 28x28 by area averaging (so a pixel is the fraction of ink it
covers, 0..255) and cached in memory; later calls are free. Images are **ink = bright on a black
background**, the natural form for the bit-packed source (the PNGs are the opposite).

Two splits:

- ``split="vinyals"`` (Vinyals et al. 2016, as released with Prototypical Networks): every character
  rotated by 0/90/180/270 degrees, each rotation a class of its own; ``part`` is ``train``,
  ``val``, ``trainval`` or ``test``.
- ``split="background"`` (Lake et al.): ``part="background"`` (964 characters, 30 alphabets) for
  training and ``part="evaluation"`` (659 characters, 20 alphabets) for testing, no rotations.
"""

from __future__ import annotations

import csv
import gzip
import os
import zipfile
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from metashot.data.paths import dataset_file
from metashot.errors import DataError, UsageError

IMAGE_SIZE = 28
SOURCE_SIZE = 105
ROTATIONS = (0, 90, 180, 270)
FILES = {
    "background": "omniglot/omniglot_background.npz",
    "evaluation": "omniglot/omniglot_evaluation.npz",
    "split": "omniglot/omniglot_vinyals_split.csv.gz",
}
PARTS = {"vinyals": ("train", "val", "trainval", "test"), "background": ("background", "evaluation")}
_KEYS = ("images_packed", "image_shape", "character_id", "alphabet", "character", "drawing", "alphabet_names")
_FIX = "the file is corrupt or truncated; replace it with a fresh copy (`metashot data download omniglot`)"


# --- reading and validating the raw files -----------------------------------------------------------


@dataclass(frozen=True)
class _Part:
    """One npz file at 28x28: ``images`` (N, 28, 28) uint8, per-image metadata (N,)."""

    images: np.ndarray
    character_id: np.ndarray
    alphabet: np.ndarray  # alphabet name per image (str)
    character: np.ndarray
    drawing: np.ndarray


def _resize(ink: np.ndarray) -> np.ndarray:
    """(n, 105, 105) 0/1 -> (n, 28, 28) uint8 by area averaging (fraction of ink * 255)."""
    x = torch.from_numpy(ink).to(torch.float32).unsqueeze(1)  # (n, 1, 105, 105)
    small = torch.nn.functional.adaptive_avg_pool2d(x, IMAGE_SIZE)  # (n, 1, 28, 28)
    return (small.squeeze(1) * 255.0).round().clamp_(0, 255).to(torch.uint8).numpy()


@lru_cache(maxsize=4)
def _load_part(path: str) -> _Part:
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in _KEYS if k not in data.files]
            if missing:
                raise DataError(f"{path}: missing arrays {missing}; {_FIX}")
            arrays = {k: data[k] for k in _KEYS}
    except DataError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as exc:
        raise DataError(f"{path}: unreadable npz ({type(exc).__name__}: {exc}); {_FIX}") from None
    packed = arrays["images_packed"]
    n = packed.shape[0] if packed.ndim == 2 else -1
    nbytes = (SOURCE_SIZE * SOURCE_SIZE + 7) // 8
    if packed.ndim != 2 or packed.shape[1] != nbytes or packed.dtype != np.uint8 or n == 0:
        raise DataError(f"{path}: images_packed has shape {packed.shape} {packed.dtype}, expected (N, {nbytes}) uint8; {_FIX}")
    if [int(v) for v in arrays["image_shape"]] != [SOURCE_SIZE, SOURCE_SIZE]:
        raise DataError(f"{path}: image_shape is {arrays['image_shape'].tolist()}, expected [105, 105]; {_FIX}")
    for key in ("character_id", "alphabet", "character", "drawing"):
        if arrays[key].shape != (n,):
            raise DataError(f"{path}: {key} has shape {arrays[key].shape}, expected ({n},) like images_packed; {_FIX}")
    names = arrays["alphabet_names"]
    if arrays["alphabet"].min() < 0 or arrays["alphabet"].max() >= len(names):
        raise DataError(f"{path}: alphabet index out of range of alphabet_names; {_FIX}")
    images = np.empty((n, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    for start in range(0, n, 2048):  # unpack in chunks: the full 105x105 array would be 200+ MB
        chunk = np.unpackbits(packed[start : start + 2048], axis=1, count=SOURCE_SIZE * SOURCE_SIZE)
        images[start : start + 2048] = _resize(chunk.reshape(-1, SOURCE_SIZE, SOURCE_SIZE))
    return _Part(
        images=images,
        character_id=arrays["character_id"].astype(np.int64),
        alphabet=np.asarray([str(a) for a in names])[arrays["alphabet"].astype(np.int64)],
        character=arrays["character"].astype(np.int64),
        drawing=arrays["drawing"].astype(np.int64),
    )


@lru_cache(maxsize=2)
def _load_split_table(path: str) -> dict[tuple[str, int], str]:
    try:
        with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: unreadable split file ({type(exc).__name__}: {exc}); {_FIX}") from None
    table: dict[tuple[str, int], str] = {}
    for i, row in enumerate(rows):
        try:
            key = (row["alphabet"], int(row["character"]))
            split = row["split"]
        except (KeyError, TypeError, ValueError):
            raise DataError(f"{path}: row {i + 2} is not 'alphabet,character,split'; {_FIX}") from None
        if split not in ("train", "val", "test"):
            raise DataError(f"{path}: row {i + 2} has split {split!r}, expected train/val/test; {_FIX}")
        table[key] = split
    if len(table) != 1623:
        raise DataError(f"{path}: {len(table)} characters, expected 1623; {_FIX}")
    return table


# --- the dataset ----------------------------------------------------------------------------------


class OmniglotDataset(Dataset[tuple[Tensor, int]]):
    """Labelled 28x28 Omniglot images; a plain map-style ``Dataset``.

    Attributes:
        images: (N, 1, 28, 28) uint8, ink bright (0..255). Index it directly (or move it to the
            GPU once) for fast episode batches; ``dataset[i]`` returns a float image in [0, 1].
        labels: (N,) int64 class index in ``0 .. num_classes - 1``.
        class_names: ``"Alphabet/characterNN"`` (original split) or ``"Alphabet/characterNN/rotDDD"``.
        character_ids: (N,) int64 global Omniglot character id (1..1623), the same for all rotations.
    """

    def __init__(self, images: Tensor, labels: Tensor, class_names: list[str], character_ids: Tensor) -> None:
        if images.ndim != 4 or images.shape[0] != labels.shape[0] or labels.shape != character_ids.shape:
            raise DataError(f"inconsistent Omniglot arrays: images {tuple(images.shape)}, labels {tuple(labels.shape)}")
        self.images = images
        self.labels = labels
        self.class_names = class_names
        self.character_ids = character_ids

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return self.images[index].to(torch.float32) / 255.0, int(self.labels[index])

    def __repr__(self) -> str:
        return f"OmniglotDataset({len(self)} images, {self.num_classes} classes)"


def load_omniglot(
    part: str, *, split: str = "vinyals", root: str | os.PathLike[str] | None = None, rotations: bool | None = None
) -> OmniglotDataset:
    """Load one part of Omniglot at 28x28.

    Args:
        part: ``train`` / ``val`` / ``trainval`` / ``test`` (Vinyals split) or ``background`` /
            ``evaluation`` (original split).
        split: ``"vinyals"`` or ``"background"``.
        root: data directory (``--data-dir``; default ``$METASHOT_DATA``).
        rotations: make each 90-degree rotation its own class (default: True for the Vinyals split,
            False for the original split).

    Example:
        >>> test = load_omniglot("test")            # doctest: +SKIP
        >>> test.num_classes, len(test)             # doctest: +SKIP
        (1692, 33840)
    """
    if split not in PARTS:
        raise UsageError(f"unknown Omniglot split {split!r}; use one of {', '.join(PARTS)}")
    if part not in PARTS[split]:
        raise UsageError(f"split {split!r} has no part {part!r}; use one of {', '.join(PARTS[split])}")
    rotations = (split == "vinyals") if rotations is None else rotations
    if split == "background":
        sources = [_load_part(str(dataset_file(FILES[part], dataset="omniglot", root=root)))]
        keep = [np.ones(len(sources[0].character_id), dtype=bool)]
    else:
        table = _load_split_table(str(dataset_file(FILES["split"], dataset="omniglot", root=root)))
        wanted = {"train": {"train"}, "val": {"val"}, "trainval": {"train", "val"}, "test": {"test"}}[part]
        sources, keep = [], []
        for name in ("background", "evaluation"):
            src = _load_part(str(dataset_file(FILES[name], dataset="omniglot", root=root)))
            try:
                splits = [table[(a, int(c))] for a, c in zip(src.alphabet, src.character)]
            except KeyError as exc:
                raise DataError(f"character {exc.args[0]} of {FILES[name]} is not in the split file; {_FIX}") from None
            sources.append(src)
            keep.append(np.isin(np.asarray(splits), list(wanted)))
    images = np.concatenate([s.images[k] for s, k in zip(sources, keep)])
    char_ids = np.concatenate([s.character_id[k] for s, k in zip(sources, keep)])
    alphabets = np.concatenate([s.alphabet[k] for s, k in zip(sources, keep)])
    characters = np.concatenate([s.character[k] for s, k in zip(sources, keep)])
    # Rows are ordered by (character_id, drawing) in each file, so classes come out in id order.
    _, first, char_index = np.unique(char_ids, return_index=True, return_inverse=True)
    names = [f"{alphabets[i]}/character{characters[i]:02d}" for i in first]
    base = torch.from_numpy(images).unsqueeze(1)  # (n, 1, 28, 28)
    char_tensor = torch.from_numpy(char_ids)
    if not rotations:
        return OmniglotDataset(base, torch.from_numpy(char_index).long(), names, char_tensor)
    all_images, all_labels = [], []
    for r, degrees in enumerate(ROTATIONS):
        all_images.append(torch.rot90(base, k=degrees // 90, dims=(2, 3)))  # counter-clockwise, like PIL
        all_labels.append(torch.from_numpy(char_index).long() * len(ROTATIONS) + r)
    # Class c = character c // 4 rotated by ROTATIONS[c % 4].
    class_names = [f"{name}/rot{deg:03d}" for name in names for deg in ROTATIONS]
    return OmniglotDataset(
        torch.cat(all_images).contiguous(), torch.cat(all_labels), class_names, char_tensor.repeat(len(ROTATIONS))
    )


def characters_in(part: str, *, split: str = "vinyals", root: str | os.PathLike[str] | None = None) -> set[int]:
    """Global character ids (1..1623) of ``part``; used to prove that train and test are disjoint."""
    return {int(c) for c in load_omniglot(part, split=split, root=root, rotations=False).character_ids.unique()}
