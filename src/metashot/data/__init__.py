"""Datasets: where they live, how they are downloaded and verified, and how they are read.

The data directory is ``--data-dir``, else ``$METASHOT_DATA``, else ``~/.cache/metashot``. Its
layout is exactly that of the project's ``shared/data`` folder (see ``docs/data.md``), so pointing
``METASHOT_DATA`` at a copy of it works without downloading anything.
"""

from metashot.data.download import download, safe_extract, sha256_file
from metashot.data.paths import data_dir, dataset_file
from metashot.data.registry import DATASETS, DataFile, Dataset, Source, get_dataset, list_datasets
from metashot.data.verify import FileCheck, verify

__all__ = [
    "DATASETS",
    "DataFile",
    "Dataset",
    "FileCheck",
    "Source",
    "data_dir",
    "dataset_file",
    "download",
    "get_dataset",
    "list_datasets",
    "safe_extract",
    "sha256_file",
    "verify",
]
