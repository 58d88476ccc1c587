"""Local favourite stores (issue 27): ``MemoryFavouriteStore`` and ``SqliteFavouriteStore``
(its own table, in the job store's SQLite file or any other)."""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime
from pathlib import Path

from sketchgen.adapters.local._sqlite import SqliteFile
from sketchgen.errors import StorageError
from sketchgen.ports import Favourite

__all__ = ["MemoryFavouriteStore", "SqliteFavouriteStore"]


def _order(favourite: Favourite) -> tuple[datetime, str, int]:
    return favourite.created_at, favourite.job_id, favourite.index


class MemoryFavouriteStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stars: dict[tuple[str, str, int], Favourite] = {}

    def put_favourite(self, favourite: Favourite) -> None:
        key = (favourite.owner_uid, favourite.job_id, favourite.index)
        with self._lock:
            self._stars.setdefault(key, favourite)

    def delete_favourite(self, owner_uid: str, job_id: str, index: int) -> None:
        with self._lock:
            self._stars.pop((owner_uid, job_id, index), None)

    def list_favourites(
        self, owner_uid: str, *, limit: int, before: Favourite | None = None
    ) -> list[Favourite]:
        with self._lock:
            mine = [f for f in self._stars.values() if f.owner_uid == owner_uid]
        mine.sort(key=_order, reverse=True)
        if before is not None:
            mine = [f for f in mine if _order(f) < _order(before)]
        return mine[:limit]

    def favourite_indices(self, owner_uid: str, job_id: str) -> set[int]:
        with self._lock:
            return {i for (uid, job, i) in self._stars if uid == owner_uid and job == job_id}

    def delete_job_favourites(self, owner_uid: str, job_id: str) -> None:
        with self._lock:
            for key in [k for k in self._stars if k[0] == owner_uid and k[1] == job_id]:
                del self._stars[key]


_SCHEMA = """
CREATE TABLE IF NOT EXISTS favourites (
    owner_uid TEXT NOT NULL,
    job_id TEXT NOT NULL,
    sketch INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (owner_uid, job_id, sketch)
);
CREATE INDEX IF NOT EXISTS favourites_newest ON favourites (owner_uid, created_at);
"""


class SqliteFavouriteStore:
    def __init__(self, path: Path | str) -> None:
        try:
            self._file = SqliteFile(path, _SCHEMA)
        except sqlite3.Error as error:
            raise StorageError(f"sqlite: {error}") from error
        self.path = self._file.path

    def _run(self, how: str, sql: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        try:
            return list(self._file.connection().execute(sql, args).fetchall())
        except sqlite3.Error as error:
            raise StorageError(f"sqlite: {error}") from error

    def put_favourite(self, favourite: Favourite) -> None:
        self._run(
            "execute",
            "INSERT OR IGNORE INTO favourites VALUES (?, ?, ?, ?)",
            (
                favourite.owner_uid,
                favourite.job_id,
                favourite.index,
                favourite.created_at.isoformat(),
            ),
        )

    def delete_favourite(self, owner_uid: str, job_id: str, index: int) -> None:
        self._run(
            "execute",
            "DELETE FROM favourites WHERE owner_uid = ? AND job_id = ? AND sketch = ?",
            (owner_uid, job_id, index),
        )

    def list_favourites(
        self, owner_uid: str, *, limit: int, before: Favourite | None = None
    ) -> list[Favourite]:
        where = "owner_uid = ?"
        args: list[object] = [owner_uid]
        if before is not None:
            stamp = before.created_at.isoformat()
            where += (
                " AND (created_at < ? OR (created_at = ? AND "
                "(job_id < ? OR (job_id = ? AND sketch < ?))))"
            )
            args += [stamp, stamp, before.job_id, before.job_id, before.index]
        rows = self._run(
            "execute",
            f"SELECT job_id, sketch, created_at FROM favourites WHERE {where} "  # noqa: S608
            "ORDER BY created_at DESC, job_id DESC, sketch DESC LIMIT ?",
            (*args, limit),
        )
        return [
            Favourite(owner_uid, str(job), int(str(index)), datetime.fromisoformat(str(stamp)))
            for job, index, stamp in rows
        ]

    def favourite_indices(self, owner_uid: str, job_id: str) -> set[int]:
        rows = self._run(
            "execute",
            "SELECT sketch FROM favourites WHERE owner_uid = ? AND job_id = ?",
            (owner_uid, job_id),
        )
        return {int(str(row[0])) for row in rows}

    def delete_job_favourites(self, owner_uid: str, job_id: str) -> None:
        self._run(
            "execute",
            "DELETE FROM favourites WHERE owner_uid = ? AND job_id = ?",
            (owner_uid, job_id),
        )
