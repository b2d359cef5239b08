"""The data directory and dataset file look-up, with errors that say how to fix a missing file."""

from __future__ import annotations

import os
from pathlib import Path

from metashot.errors import DataError

ENV_VAR = "METASHOT_DATA"
DEFAULT_DIR = Path("~/.cache/metashot")


def data_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """``override`` (``--data-dir``), else ``$METASHOT_DATA``, else ``~/.cache/metashot``."""
    if override:
        return Path(override).expanduser()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return DEFAULT_DIR.expanduser()


def dataset_file(relpath: str, *, dataset: str, root: str | os.PathLike[str] | None = None) -> Path:
    """Path of ``relpath`` inside the data directory; :class:`DataError` with the fix if missing.

    Args:
        relpath: e.g. ``"mnist/mnist.npz"``.
        dataset: registry name used in the hint, e.g. ``"mnist"``.
        root: explicit data directory (``--data-dir``).
    """
    base = data_dir(root)
    path = base / relpath
    if not path.is_file():
        raise DataError(
            f"{path} not found: dataset {dataset!r} is not in the data directory {base}. "
            f"Run `metashot data download {dataset}` or point --data-dir / ${ENV_VAR} at a folder that has it"
        )
    return path
