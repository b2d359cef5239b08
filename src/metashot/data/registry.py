"""The dataset registry: a plain dict of :class:`Dataset` entries, one screen long.

Each entry names the files of the cached layout (paths relative to the data directory, exactly as
in the project's ``shared/data`` folder, with the sha256 and size of that reference copy from its
README), the official sources they are made from, the licence, and the converter (in
:mod:`metashot.data.converters`) that turns the downloaded sources into those files.

Checksum policy (see ``docs/data.md``):

- ``DataFile.sha256`` is the sha256 of the reference copy's bytes. ``metashot data verify``
  accepts a file whose bytes match it.
- Converted files (``.npz``, generated ``.csv.gz``) are not always byte-reproducible: zip/gzip
  bytes depend on the zlib build. Their ``content_sha256`` is a digest of the decoded content
  (:func:`metashot.data.converters.content_digest`); after a conversion whose bytes differ, the
  content digest is checked and the new file's sha256 is recorded in the data directory's
  manifest, which ``verify`` then accepts.
- ``Source.sha256`` / ``md5`` are checksums of the downloads. Where neither is known, ``None``
  is stored and the note says so; the files made from such a source are still checked against
  the reference sha256/content digests above.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from metashot.errors import UsageError


@dataclass(frozen=True)
class DataFile:
    """One file of the cached layout."""

    path: str  # relative to the data directory, POSIX separators
    sha256: str  # of the reference copy (shared/data/README.md)
    size: int  # bytes of the reference copy
    content_sha256: str | None = None  # digest of the decoded content, for converted files


@dataclass(frozen=True)
class Source:
    """One official download."""

    filename: str  # name under <data dir>/.downloads/<dataset>/
    urls: tuple[str, ...]  # mirrors, tried in order
    sha256: str | None = None
    md5: str | None = None
    size: int | None = None
    note: str = ""


@dataclass(frozen=True)
class Dataset:
    """A registry entry: the cached files, where they come from, and how they are made."""

    name: str
    description: str
    licence: str
    files: tuple[DataFile, ...]
    sources: tuple[Source, ...]
    converter: str  # key of metashot.data.converters.CONVERTERS
    reproduction: str  # how a fresh download compares with the reference copy
    content_differs: bool = False  # True: converted content is expected to differ (CIFAR-10)

    @property
    def paths(self) -> list[str]:
        return [f.path for f in self.files]


# --- helpers to keep the table short ---------------------------------------------------------------

_PROTONETS = "https://raw.githubusercontent.com/jakesnell/prototypical-networks/master"
_OMNIGLOT = ("https://github.com/brendenlake/omniglot/raw/master/python", "https://raw.githubusercontent.com/brendenlake/omniglot/master/python")
_MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist",  # torchvision's mirror
    "https://storage.googleapis.com/cvdf-datasets/mnist",  # TensorFlow Datasets' mirror
    "http://yann.lecun.com/exdb/mnist",  # the original site (often refuses automated downloads)
)


def _copy(path: str, sha256: str, size: int, url: str) -> tuple[DataFile, Source]:
    """A file that is a byte copy of one download: same sha256 for both."""
    file = DataFile(path, sha256, size)
    return file, Source(path.rsplit("/", 1)[-1], (url,), sha256=sha256, size=size)


_VINYALS = {
    "train": ("984522c194c30fb678ce53304a160a42faf5403ad4f9a67010f32dd3a35738e0", 133244),
    "val": ("11f99e54faee3e26f53d3231c1cceac5bf7b8730e9be31cb6dab256551dc0c1a", 21312),
    "test": ("845264cc5c156180828ccf17915668b17ee21424d0170df6e7d81676aa5d1204", 50372),
    "trainval": ("5276ae50c755596d0bff7f2284e85625695549a85ee6e36b6491ad1e5d1cc26a", 154556),
}
_vinyals = [
    _copy(f"splits/omniglot-vinyals/{s}.txt", h, n, f"{_PROTONETS}/data/omniglot/splits/vinyals/{s}.txt")
    for s, (h, n) in _VINYALS.items()
]
_LICENSE_PROTONETS, _protonets_licence = _copy(
    "splits/LICENSE-prototypical-networks", "8a8067902ed4ab00640fbf9cc831d0dbe387f6418304ae0cf1d636b8021f6b2c", 1067,
    f"{_PROTONETS}/LICENSE",
)
_RAVI = {
    "train": ("498519cd8e49ce97ed26a4a3638966698ae41ab35e9c68538319fc9b46ba7d2f", 1228815),
    "val": ("5658a59921ca027ee76af92949869c5d6f41d77592ff3b18db325a9d10c893b9", 307215),
    "test": ("2b7cfa78342995761a572a8158e539bc4e0a80f9bbd7d00c1e17a460fbbb93fa", 384015),
}
_ravi = [
    _copy(f"splits/miniimagenet-ravi/{s}.csv", h, n, f"{_PROTONETS}/data/miniImagenet/splits/ravi/{s}.csv")
    for s, (h, n) in _RAVI.items()
]
_CIFARFS_REPO = "https://raw.githubusercontent.com/ArnoutDevos/maml-cifar-fs/master"
_CIFARFS = {
    "train": ("08d41acf21db7203341442e96b2226276217e379bbf809af34849506af1a8c5e", 460),
    "val": ("e9ca1bb0404d6f804eb4df42923187eb07052a0c2f87820342b0da1f8c940278", 123),
    "test": ("3720c9d858fa547dbf71ca80ede1f94a803279cfdedd3f7a9b9d3beb4ce5c020", 142),
}
_cifarfs = [
    _copy(f"splits/cifar-fs/{s}.txt", h, n, f"{_CIFARFS_REPO}/data/CIFARFS/cifar-fs-splits/{s}.txt")
    for s, (h, n) in _CIFARFS.items()
] + [
    _copy(
        "splits/LICENSE-maml-cifar-fs", "a9d6c616fd55d28e9dbc92ddffc8ec1f4526576d657f550ce422c309af180618", 1069,
        f"{_CIFARFS_REPO}/LICENSE",
    )
]


def _mnist_source(name: str, sha256: str, size: int) -> Source:
    return Source(
        name, tuple(f"{m}/{name}" for m in _MNIST_MIRRORS), sha256=sha256, size=size,
        note="sha256 of the .gz as published by TensorFlow Datasets; the decompressed idx sha256 is checked too",
    )


# --- the registry ----------------------------------------------------------------------------------

DATASETS: dict[str, Dataset] = {
    "omniglot": Dataset(
        name="omniglot",
        description="Omniglot (Lake et al. 2015), 1623 characters x 20 drawings, 105x105, + the Vinyals split",
        licence="MIT (c) 2015 Brenden Lake; split lists MIT (c) 2017 Jake Snell",
        files=(
            DataFile("omniglot/omniglot_background.npz", "81b057ed9ec065bedb6e29be008008a6877a32e8ec01327645c913c6a1c6892e",
                     3054939, "1c3638d89d16d9bb6ab88eeea9238b4d764eaa971dde34b4ea92b8172d5a01d7"),
            DataFile("omniglot/omniglot_evaluation.npz", "42a501d1428806bcd894be9f8fc8da0d8db0491f96355efdd55d1cbe09fa88a9",
                     2261926, "b6e96ff000063d087811914491b754b17a5c2a33a79d95cc08b3de6d8da6d3c1"),
            DataFile("omniglot/omniglot_vinyals_split.csv.gz", "eec78d474799f5bffbe95ef20df4e45605b536b58d2f9cd1013d177840191c8e",
                     4250, "5ca3ece1fa6cbc4ee771cd63c06d046a5325213d7109ea04e77da5614a19f598"),
            *(f for f, _ in _vinyals),
            _LICENSE_PROTONETS,
        ),
        sources=(
            Source("images_background.zip", tuple(f"{u}/images_background.zip" for u in _OMNIGLOT),
                   md5="68d2efa1b9178cc56df9314c21c6e718",
                   note="md5 as published by torchvision; no published sha256 was found"),
            Source("images_evaluation.zip", tuple(f"{u}/images_evaluation.zip" for u in _OMNIGLOT),
                   md5="6b91aef0f799c5bb55b94e3f2daec811",
                   note="md5 as published by torchvision; no published sha256 was found"),
            *(s for _, s in _vinyals),
            _protonets_licence,
        ),
        converter="omniglot",
        reproduction="npz arrays rebuilt from the official PNGs: same content as the reference copy "
        "(checked by content digest); split files are byte copies",
    ),
    "mnist": Dataset(
        name="mnist",
        description="MNIST handwritten digits, standard 60k/10k, 28x28 uint8",
        licence="CC BY-SA 3.0 (Y. LeCun, C. Cortes, C. J. C. Burges)",
        files=(
            DataFile("mnist/mnist.npz", "06af5dfe73b70e3bc1c36439982b18a8d76803db9b544f6fdf838a37fbb01b64",
                     11490519, "b3c81e78b40165819b768933d0abfcaf55bf9631f1ddfe3ce812b7f7bc2bc3d5"),
        ),
        sources=(
            _mnist_source("train-images-idx3-ubyte.gz", "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422),
            _mnist_source("train-labels-idx1-ubyte.gz", "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881),
            _mnist_source("t10k-images-idx3-ubyte.gz", "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877),
            _mnist_source("t10k-labels-idx1-ubyte.gz", "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542),
        ),
        converter="mnist",
        reproduction="arrays decoded from the official idx files: same content as the reference copy",
    ),
    "zinc250k": Dataset(
        name="zinc250k",
        description="ZINC-250k, the chemical VAE paper's 249,456 SMILES, + RDKit logP/QED/SAS",
        licence="ZINC molecules free to use; chemical_vae (first distributor) Apache-2.0; DD-VAE has no licence file",
        files=(
            DataFile("zinc250k/250k_rndm_zinc_drugs_clean.smi.gz", "50b6b95dbdd4547344602c352b6e770daf8bda801fcd670fc487334d04a1ab36",
                     2860728, "f900b46bb42b77aab37cd827d1ea474e2a037ecab2bd7def2b6027492216d36a"),
            DataFile("zinc250k/zinc250k_rdkit_props.csv.gz", "0d3c7d2aa66a72fe7fed0027ba108a38f2a63ca5864bfa1e671fcc9ea5e43d95",
                     9433897, "12582d96dde9231bb4cabb413c2d36a62a51ed0de74fa2556b18f03320c6d74e"),
        ),
        sources=(
            Source("250k_rndm_zinc_drugs_clean.smi.gz", (
                "https://raw.githubusercontent.com/insilicomedicine/DD-VAE/master/data/zinc/250k_rndm_zinc_drugs_clean.smi.gz",
                "https://github.com/insilicomedicine/DD-VAE/raw/74e714639fd5/data/zinc/250k_rndm_zinc_drugs_clean.smi.gz",
            ), sha256="50b6b95dbdd4547344602c352b6e770daf8bda801fcd670fc487334d04a1ab36", size=2860728,
                note="byte copy; the properties csv is computed from it with RDKit"),
        ),
        converter="zinc250k",
        reproduction="SMILES: byte copy. Properties: recomputed with RDKit (needs the chem extra); the content "
        "matches the reference only with the same RDKit version (2026.09.1); QED differs from the 2016 values",
    ),
    "moses": Dataset(
        name="moses",
        description="MOSES benchmark SMILES (Polykovskiy et al.): train 1.58M, test 176k, test_scaffolds 176k",
        licence="MIT (molsets); molecules from ZINC Clean Leads",
        files=(
            DataFile("moses/train.csv.gz", "786f0313aa6b9ba5514df685f885742a70ea8d86f1a4fa48115f7f80a634265c", 10238967),
            DataFile("moses/test.csv.gz", "f896fbf3764f88d94670b9959e5872c600c12152a18233823e820761b7a791b2", 1367572),
            DataFile("moses/test_scaffolds.csv.gz", "adffb2192c1bfe31ab0e13154d4af19a37dc18bdbf3cd7b4491e04405128adde", 1274114),
        ),
        sources=(
            Source("molsets-0.3.1-py3-none-any.whl",
                   ("https://files.pythonhosted.org/packages/py3/m/molsets/molsets-0.3.1-py3-none-any.whl",),
                   note="PyPI wheel; its sha256 is not recorded here (the three csv.gz inside are byte copies "
                   "and are checked against the sha256 above)"),
        ),
        converter="moses",
        reproduction="byte copies of moses/dataset/data/*.csv.gz from the molsets 0.3.1 wheel",
    ),
    "cifar10": Dataset(
        name="cifar10",
        description="CIFAR-10, 50k/10k 32x32 RGB (reference copy is JPEG-derived and LOSSY; a download is lossless)",
        licence="no formal licence; cite Krizhevsky 2009, 'Learning Multiple Layers of Features from Tiny Images'",
        files=(
            DataFile("cifar10/cifar10_jpeg.npz", "f7b4b3b38e05e7a6e30d13331db3f0467b34443e34a4d4424c5f6c2dade99a21",
                     170877077, "30ecb5399813f7258f346e02f578498456f84de5faa2d8a1d4096fe441a02e7f"),
        ),
        sources=(
            Source("cifar-10-binary.tar.gz", ("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",),
                   sha256="c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
                   md5="c32a1d4ab5d03f1284b67883e8d87530", size=170052171,
                   note="the official binary version (md5 from the CIFAR page): plain bytes, so nothing is "
                   "unpickled; the python version holds the same images as pickles"),
        ),
        converter="cifar10",
        reproduction="DIFFERS BY DESIGN: the reference copy was rebuilt from JPEG files (lossy, mean abs. error "
        "4.5-8.1 per pixel); a download gives the original lossless pixels in the same layout (same keys, "
        "train in standard order, test class-sorted with test_index_in_class), so its sha256 and content "
        "digest differ from the reference; the file keeps the name cifar10_jpeg.npz so loaders find it",
        content_differs=True,
    ),
    "miniimagenet-splits": Dataset(
        name="miniimagenet-splits",
        description="miniImageNet Ravi & Larochelle split lists (file names + labels only, no pixels)",
        licence="MIT (c) 2017 Jake Snell (prototypical-networks)",
        files=(*(f for f, _ in _ravi), _LICENSE_PROTONETS),
        sources=(*(s for _, s in _ravi), _protonets_licence),
        converter="copy",
        reproduction="byte copies",
    ),
    "cifar-fs-splits": Dataset(
        name="cifar-fs-splits",
        description="CIFAR-FS class split lists (Bertinetto et al. 2019); CIFAR-100 pixels are not available",
        licence="MIT (c) 2017 Chelsea Finn (maml-cifar-fs)",
        files=tuple(f for f, _ in _cifarfs),
        sources=tuple(s for _, s in _cifarfs),
        converter="copy",
        reproduction="byte copies",
    ),
}


def list_datasets() -> list[str]:
    """Names of the registered datasets."""
    return list(DATASETS)


def get_dataset(name: str) -> Dataset:
    """The registry entry ``name``; UsageError with a "did you mean" suggestion if unknown."""
    try:
        return DATASETS[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(DATASETS), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UsageError(f"unknown dataset {name!r}; {hint}known: {', '.join(DATASETS)}") from None
