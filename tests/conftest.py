"""Shared test fixtures: one torch thread, and the real-data folder (skip with a reason if absent).

Keep this file small and generic: every system's tests load it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# The machine's few cores are shared by many test processes; one thread each is fastest overall
# and makes float results independent of the core count.
torch.set_num_threads(1)

DATA_ENV = "METASHOT_DATA"


def shared_data_dir() -> Path | None:
    """The real-data folder from $METASHOT_DATA if it exists, else None."""
    value = os.environ.get(DATA_ENV)
    if not value:
        return None
    path = Path(value).expanduser()
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of the real datasets (``$METASHOT_DATA``, e.g. ``../shared/data``); skips if unset/missing.

    Use together with ``@pytest.mark.needs_shared_data``.
    """
    path = shared_data_dir()
    if path is None:
        value = os.environ.get(DATA_ENV)
        reason = (
            f"${DATA_ENV} is not set; point it at the shared data folder (e.g. ../shared/data)"
            if not value
            else f"${DATA_ENV}={value} is not a folder"
        )
        pytest.skip(reason)
    return path
