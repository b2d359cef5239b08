"""Few-shot prediction on your own images: a support folder of class sub-folders, a query folder.

Images may be PNG/JPEG/BMP/GIF/TIFF/WebP of any size, grey or colour. Each is converted to grey,
inverted when its background is light (mean > 0.5, e.g. dark ink on white paper: Omniglot is
stored as bright ink on black), resized to 28x28 by area averaging and scaled to [0, 1]. Files
whose names start with a dot are ignored; any other non-image file is an error naming the file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from metashot.errors import ImageError, UsageError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}

# ---------------------------------------------------------------------------------------------------


def load_image(path: str | os.PathLike[str], size: int = 28) -> Tensor:
    """One image file -> (1, size, size) float in [0, 1], bright ink on black; ImageError naming the file."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise ImageError(
            f"{path}: not an image file (expected one of {', '.join(sorted(IMAGE_SUFFIXES))}); remove it from the folder"
        )
    try:
        with Image.open(path) as image:
            image.load()
            grey = image.convert("L")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ImageError(f"{path}: unreadable image ({type(exc).__name__}: {exc})") from None
    if grey.width == 0 or grey.height == 0:
        raise ImageError(f"{path}: empty image (0 pixels)")
    x = torch.frombuffer(bytearray(grey.tobytes()), dtype=torch.uint8).view(1, 1, grey.height, grey.width)
    x = x.to(torch.float32) / 255.0
    if float(x.mean()) > 0.5:  # light background: make ink bright, as in the training data
        x = 1.0 - x
    return F.adaptive_avg_pool2d(x, size)[0]


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def load_support_folder(folder: str | os.PathLike[str], size: int = 28) -> tuple[Tensor, Tensor, list[str]]:
    """``folder/<class>/<image>`` -> images (n, 1, size, size), labels (n,), class names (sorted)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"--support {folder}: not a folder")
    classes = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    stray = [p for p in _image_files(folder)]
    if stray:
        raise ImageError(f"{stray[0]}: support images must be inside one sub-folder per class, not directly in {folder}")
    if len(classes) < 2:
        raise UsageError(f"--support {folder}: needs at least 2 class sub-folders, found {len(classes)}")
    images, labels = [], []
    for label, class_dir in enumerate(classes):
        files = _image_files(class_dir)
        if not files:
            raise UsageError(f"support class {class_dir.name!r} ({class_dir}) has no images; add at least one or remove it")
        for file in files:
            images.append(load_image(file, size))
            labels.append(label)
    return torch.stack(images), torch.tensor(labels), [c.name for c in classes]


def load_query_folder(folder: str | os.PathLike[str], size: int = 28) -> tuple[Tensor, list[Path]]:
    """``folder/<image>`` -> images (n, 1, size, size) and their paths."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"--query {folder}: not a folder")
    files = _image_files(folder)
    if not files:
        raise UsageError(f"--query {folder}: no image files in it")
    return torch.stack([load_image(f, size) for f in files]), files


@dataclass
class Prediction:
    """The predicted class of one query file, with its probability and every class's probability."""

    file: str
    predicted: str
    probability: float
    probabilities: dict[str, float]


@torch.inference_mode()
def predict_folders(
    model: nn.Module, support: str | os.PathLike[str], query: str | os.PathLike[str], device: torch.device
) -> list[Prediction]:
    """Classify every image of ``query`` against the labelled ``support`` folder."""
    support_images, support_labels, names = load_support_folder(support)
    query_images, files = load_query_folder(query)
    model = model.to(device).eval()
    log_probs = model(support_images.to(device), support_labels.to(device), query_images.to(device), len(names))
    probs = log_probs.exp().cpu()  # (n_query, n_way)
    out = []
    for file, row in zip(files, probs):
        best = int(row.argmax())
        out.append(Prediction(str(file), names[best], float(row[best]), {n: float(p) for n, p in zip(names, row)}))
    return out
