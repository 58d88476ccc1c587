"""``LocalBlobStore``: a folder. Writes are atomic; keys cannot escape the folder."""

from __future__ import annotations

import shutil
from pathlib import Path

from sketchgen._files import atomic_write_bytes
from sketchgen.adapters.keys import check_key
from sketchgen.errors import NotFoundError

__all__ = ["LocalBlobStore"]


class LocalBlobStore:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
        if not path.is_relative_to(self.root):  # belt and braces: check_key already refuses '..'
            raise NotFoundError(f"no blob {key!r}")
        return path

    def put(self, key: str, data: bytes, content_type: str) -> None:
        atomic_write_bytes(self._path(key), data)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            raise NotFoundError(f"no blob {key!r}") from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def signed_url(self, key: str, *, expires_s: int) -> str | None:
        return None  # the API serves local blobs itself, behind its own auth

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def delete_under(self, folder: str) -> int:
        path = self._path(folder.rstrip("/"))
        if not path.is_dir() or path == self.root:  # never the whole store
            return 0
        count = sum(1 for p in path.rglob("*") if p.is_file())
        shutil.rmtree(path)
        return count
