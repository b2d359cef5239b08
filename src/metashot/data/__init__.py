"""Datasets: where they live, how they are downloaded and verified, and how they are read.

The data directory is ``--data-dir``, else ``$METASHOT_DATA``, else ``~/.cache/metashot``. Its
layout is exactly that of the project's ``shared/data`` folder (see ``docs/data.md``), so pointing
``METASHOT_DATA`` at a copy of it works without downloading anything.
"""

from metashot.data.paths import data_dir, dataset_file

__all__ = ["data_dir", "dataset_file"]
