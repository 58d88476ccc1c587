"""File helpers shared by the local writers."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write_bytes"]


def _process_umask() -> int:
    # Read once, at import (single-threaded): setting it back and forth later would race
    # with other threads creating files.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# mkstemp makes its file 0600 (private to us); the finished file gets the mode any file
# the user creates gets (0644 under the usual umask 022), so sketches can be shared.
_FILE_MODE = 0o666 & ~_process_umask()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Readers see the old file or the new one, never half of either."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            os.fchmod(fh.fileno(), _FILE_MODE)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
