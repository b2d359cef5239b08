"""Typed errors. Every message says what is wrong and what to do about it.

The CLI catches :class:`MetashotError` and prints its message on one line (exit code
``exit_code``: 1 for runtime problems, 2 for usage problems) instead of a traceback.
"""

from __future__ import annotations


class MetashotError(Exception):
    """Base class of every error metashot raises on purpose."""

    exit_code = 1


class UsageError(MetashotError, ValueError):
    """The user asked for something impossible or malformed (exit code 2)."""

    exit_code = 2


class DataError(MetashotError):
    """A dataset file is missing, corrupt, truncated or in an unexpected format."""


class ChecksumError(DataError):
    """A file's sha256 does not match the registry."""


class DownloadError(DataError):
    """A download failed after all retries."""


class UnsafeArchiveError(DataError):
    """An archive member would escape the extraction folder (absolute path, '..', link)."""


class CheckpointError(MetashotError):
    """A checkpoint folder is missing, incomplete or does not match the model."""


class NonFiniteLossError(MetashotError):
    """A loss became NaN or infinite during training."""

    def __init__(self, step: int, losses: dict[str, float], hint: str | None = None) -> None:
        bad = ", ".join(f"{k}={v}" for k, v in losses.items())
        msg = (
            f"non-finite loss at step {step} ({bad}); "
            + (hint or "try a lower learning rate, gradient clipping (--grad-clip), or check the input data")
        )
        super().__init__(msg)
        self.step = step
        self.losses = losses


class EpisodeSizeError(UsageError):
    """An episode cannot be drawn: too many ways, or too many shots+queries for a class."""


class ImageError(UsageError):
    """An image file is unreadable, not an image, or has the wrong size."""


class InvalidSmilesError(UsageError):
    """A SMILES string is empty, unparsable, has unknown tokens or is too long."""


class TimestampError(UsageError):
    """Timestamps that go backwards, or are NaN or infinite."""
