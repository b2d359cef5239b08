"""Converters from the official downloads into the cached layout (``docs/data.md``).

Each converter has the signature ``convert(sources, out, *, progress) -> skipped``: ``sources``
maps a :class:`~metashot.data.registry.Source` file name to its downloaded path, the converter
writes the dataset's files under ``out`` (their registry paths), and returns
``{relative path: reason}`` for files it could not make (e.g. RDKit missing).

:func:`content_digest` is the content checksum used for converted files, whose bytes (zip/gzip
containers) may differ between zlib builds while the content does not.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import os
import re
import shutil
import sys
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from metashot.data.download import CHUNK, _check_member_name, safe_extract
from metashot.errors import ChecksumError, DataError

log = logging.getLogger(__name__)

Converter = Callable[..., dict[str, str]]


# --- content digests and writers ------------------------------------------------------------------


def content_digest(path: str | os.PathLike[str]) -> str:
    """sha256 of a file's decoded content.

    ``.npz``: over the arrays in sorted key order, each as ``key\\0dtype\\0shape\\0`` + its C-order
    bytes. ``.gz``: of the decompressed bytes. Anything else: of the file's bytes.
    """
    path = Path(path)
    digest = hashlib.sha256()
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            for key in sorted(data.files):
                array = np.ascontiguousarray(data[key])
                digest.update(f"{key}\0{array.dtype.str}\0{array.shape}\0".encode())
                digest.update(array.tobytes())
        return digest.hexdigest()
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez_compressed`` with keys in the given order (numpy >= 2 writes fixed timestamps)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)


def write_gzip_text(path: Path, text: str) -> None:
    """Write ``text`` gzip-compressed (level 9, mtime 0: reproducible for a given zlib)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as raw, gzip.GzipFile(path.stem, "wb", 9, raw, mtime=0) as gz:
        gz.write(text.encode("utf-8"))


def _copy(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)


# --- byte copies ----------------------------------------------------------------------------------


def convert_copy(sources: dict[str, Path], out: Path, *, dataset: str, progress: bool = True) -> dict[str, str]:
    """Sources that are byte copies of a dataset file (same sha256) are copied to its path."""
    from metashot.data.registry import get_dataset

    entry = get_dataset(dataset)
    by_sha = {f.sha256: f.path for f in entry.files}
    for source in entry.sources:
        if source.sha256 in by_sha and source.filename in sources:
            _copy(sources[source.filename], out / by_sha[source.sha256])
    return {}


# --- Omniglot --------------------------------------------------------------------------------------

_OMNIGLOT_PNG = re.compile(r"(?:^|/)([^/]+)/character(\d+)/(\d{4})_(\d{2})\.png$")


def omniglot_arrays(zip_path: Path, *, label_offset: int | None = None, progress: bool = False) -> dict[str, np.ndarray]:
    """Arrays of ``omniglot_*.npz`` from an official ``images_*.zip`` (PNGs, 1 = white background).

    Rows are ordered by (character_id, drawing); ``images_packed`` holds ``np.packbits`` of the
    105*105 pixels with bit 1 = ink, i.e. ``1 - png``. ``label = character_id - label_offset``
    (default: the smallest id in the archive: 1 for background, 965 for evaluation).
    """
    from PIL import Image

    rows = []
    with zipfile.ZipFile(zip_path) as zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        for info in tqdm(infos, desc=zip_path.name, disable=not progress, file=sys.stderr, leave=False):
            _check_member_name(zip_path, info.filename)
            match = _OMNIGLOT_PNG.search(info.filename)
            if match is None:
                continue
            alphabet, character, character_id, drawing = match.groups()
            with Image.open(io.BytesIO(zf.read(info))) as image:
                white = np.asarray(image.convert("L")) > 127  # (105, 105) bool, True = background
            if white.shape != (105, 105):
                raise DataError(f"{zip_path.name}: {info.filename} is {white.shape}, expected 105x105")
            ink = (~white).astype(np.uint8).reshape(-1)
            rows.append((int(character_id), int(drawing), alphabet, int(character), np.packbits(ink)))
    if not rows:
        raise DataError(f"{zip_path}: no Omniglot PNGs (Alphabet/characterNN/IIII_DD.png) found; wrong archive?")
    rows.sort(key=lambda r: (r[0], r[1]))
    names = sorted({r[2] for r in rows})
    index = {name: i for i, name in enumerate(names)}
    ids = np.array([r[0] for r in rows], dtype=np.int16)
    offset = int(ids.min()) if label_offset is None else label_offset
    return {
        "images_packed": np.stack([r[4] for r in rows]).astype(np.uint8),
        "image_shape": np.array([105, 105], dtype=np.int16),
        "character_id": ids,
        "label": (ids - offset).astype(np.int16),
        "alphabet": np.array([index[r[2]] for r in rows], dtype=np.int8),
        "character": np.array([r[3] for r in rows], dtype=np.int8),
        "drawing": np.array([r[1] for r in rows], dtype=np.uint8),
        "alphabet_names": np.array(names),
    }


def vinyals_split_csv(split_files: dict[str, Path]) -> str:
    """``alphabet,character,split`` csv text from the Vinyals lists (train, val, test order; rotations dropped)."""
    rows, seen = ["alphabet,character,split"], set()
    for split in ("train", "val", "test"):
        for line in split_files[split].read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            alphabet, character, _rotation = line.strip().split("/")
            key = (alphabet, int(character.removeprefix("character")))
            if key not in seen:
                seen.add(key)
                rows.append(f"{key[0]},{key[1]},{split}")
    return "\r\n".join(rows) + "\r\n"  # CRLF, as Python's csv module writes (and the reference has)


def convert_omniglot(sources: dict[str, Path], out: Path, *, progress: bool = True) -> dict[str, str]:
    for part, offset in (("background", 1), ("evaluation", 965)):
        arrays = omniglot_arrays(sources[f"images_{part}.zip"], label_offset=offset, progress=progress)
        write_npz(out / f"omniglot/omniglot_{part}.npz", arrays)
    splits = {s: sources[f"{s}.txt"] for s in ("train", "val", "test", "trainval")}
    write_gzip_text(out / "omniglot/omniglot_vinyals_split.csv.gz", vinyals_split_csv(splits))
    return convert_copy(sources, out, dataset="omniglot", progress=progress)


# --- MNIST -----------------------------------------------------------------------------------------

# sha256 of the decompressed idx files (shared/data/README.md; the standard files).
MNIST_IDX_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}


def parse_idx(data: bytes, *, name: str = "idx") -> np.ndarray:
    """Decode an idx file (big-endian header; only the uint8 type 0x08 is used by MNIST)."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DataError(f"{name}: not a uint8 idx file (magic {data[:4].hex()})")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise DataError(f"{name}: {body.size} values for shape {dims}; the file is truncated")
    return body.reshape(dims).copy()


def convert_mnist(sources: dict[str, Path], out: Path, *, progress: bool = True) -> dict[str, str]:
    arrays = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        for key, kind in (("x", "images-idx3"), ("y", "labels-idx1")):
            name = f"{prefix}-{kind}-ubyte"
            with gzip.open(sources[f"{name}.gz"], "rb") as fh:
                data = fh.read()
            actual = hashlib.sha256(data).hexdigest()
            if actual != MNIST_IDX_SHA256[name]:
                raise ChecksumError(f"{name}: sha256 {actual} is not the standard {MNIST_IDX_SHA256[name]}")
            arrays[f"{key}_{split}"] = parse_idx(data, name=name)
    write_npz(out / "mnist/mnist.npz", {k: arrays[k] for k in ("x_train", "y_train", "x_test", "y_test")})
    return {}


# --- ZINC-250k -------------------------------------------------------------------------------------

ZINC_PROPS = "zinc250k/zinc250k_rdkit_props.csv.gz"


def zinc_property_rows(smiles: Iterable[str], *, progress: bool = False, total: int | None = None) -> Iterable[str]:
    """``smiles,logP,qed,SAS`` csv lines (floats as Python ``repr``), computed with RDKit.

    Raises ImportError if RDKit (or its Contrib SA_Score) is missing.
    """
    from rdkit import Chem, RDConfig, RDLogger
    from rdkit.Chem import QED, Crippen

    sa_dir = os.path.join(RDConfig.RDContribDir, "SA_Score")
    if sa_dir not in sys.path:
        sys.path.append(sa_dir)
    import sascorer  # type: ignore[import-not-found]  # RDKit Contrib

    RDLogger.DisableLog("rdApp.*")
    for s in tqdm(smiles, total=total, desc="RDKit properties", disable=not progress, file=sys.stderr, leave=False):
        mol = Chem.MolFromSmiles(s)
        if mol is None:
            raise DataError(f"ZINC SMILES {s!r} does not parse with this RDKit; cannot compute properties")
        yield f"{s},{Crippen.MolLogP(mol)!r},{QED.qed(mol)!r},{sascorer.calculateScore(mol)!r}"


def convert_zinc250k(sources: dict[str, Path], out: Path, *, progress: bool = True) -> dict[str, str]:
    smi = sources["250k_rndm_zinc_drugs_clean.smi.gz"]
    _copy(smi, out / "zinc250k/250k_rndm_zinc_drugs_clean.smi.gz")
    with gzip.open(smi, "rt", encoding="utf-8") as fh:
        smiles = [line.rstrip("\n") for line in fh if line.strip()]
    try:
        lines = list(zinc_property_rows(smiles, progress=progress, total=len(smiles)))
    except ImportError:
        return {ZINC_PROPS: "needs RDKit: pip install 'metashot[chem]', then rerun `metashot data download zinc250k`"}
    write_gzip_text(out / ZINC_PROPS, "smiles,logP,qed,SAS\n" + "\n".join(lines) + "\n")
    return {}


# --- MOSES -----------------------------------------------------------------------------------------


def convert_moses(sources: dict[str, Path], out: Path, *, progress: bool = True) -> dict[str, str]:
    wheel = sources["molsets-0.3.1-py3-none-any.whl"]
    with zipfile.ZipFile(wheel) as zf:
        for name in ("train", "test", "test_scaffolds"):
            member = f"moses/dataset/data/{name}.csv.gz"
            _check_member_name(wheel, member)
            dest = out / f"moses/{name}.csv.gz"
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                with zf.open(member) as src, open(dest, "wb") as fh:
                    shutil.copyfileobj(src, fh, CHUNK)
            except KeyError:
                raise DataError(f"{wheel.name} has no {member}; is this the molsets 0.3.1 wheel?") from None
    return {}


# --- CIFAR-10 --------------------------------------------------------------------------------------

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One binary batch: 10000 records of 1 label byte + 3072 pixel bytes (R, G, B planes)."""
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size % 3073:
        raise DataError(f"{path.name}: {raw.size} bytes is not a whole number of CIFAR-10 records; truncated?")
    records = raw.reshape(-1, 3073)
    images = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # (N, 3, H, W) -> (N, H, W, 3)
    return np.ascontiguousarray(images), records[:, 0].copy()


def cifar10_arrays(batch_dir: Path) -> dict[str, np.ndarray]:
    """The cached layout from ``cifar-10-batches-bin``: train in standard order, test class-sorted."""
    train = [_cifar_batch(batch_dir / f"data_batch_{i}.bin") for i in range(1, 6)]
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    x_test, y_test = _cifar_batch(batch_dir / "test_batch.bin")
    # test_index_in_class[i]: rank of image i among the test images of its class (standard order);
    # the reference copy stores the test set sorted by (class, rank), and so do we.
    rank = np.zeros(len(y_test), dtype=np.int64)
    for c in range(10):
        members = np.flatnonzero(y_test == c)
        rank[members] = np.arange(len(members))
    order = np.lexsort((rank, y_test))
    return {
        "x_train": x_train,
        "y_train": y_train.astype(np.uint8),
        "x_test": np.ascontiguousarray(x_test[order]),
        "y_test": y_test[order].astype(np.uint8),
        "test_index_in_class": rank[order].astype(np.int16),
        "class_names": np.array(CIFAR10_CLASSES),
    }


def convert_cifar10(sources: dict[str, Path], out: Path, *, progress: bool = True) -> dict[str, str]:
    work = out / ".work-cifar10"
    safe_extract(sources["cifar-10-binary.tar.gz"], work)
    write_npz(out / "cifar10/cifar10_jpeg.npz", cifar10_arrays(work / "cifar-10-batches-bin"))
    shutil.rmtree(work)
    return {}


CONVERTERS: dict[str, Converter] = {
    "omniglot": convert_omniglot,
    "mnist": convert_mnist,
    "zinc250k": convert_zinc250k,
    "moses": convert_moses,
    "cifar10": convert_cifar10,
    "copy": convert_copy,
}

__all__ = ["CONVERTERS", "content_digest", "write_gzip_text", "write_npz"]
