"""One SQLite file shared by threads: what every SQLite adapter here needs the same way.

A connection per thread (SQLite connections are not shared across threads), in autocommit mode
so that ``BEGIN IMMEDIATE`` is ours to issue, and the file in WAL mode so readers never wait
for a writer. :meth:`SqliteFile._transaction` takes the write lock up front (``BEGIN
IMMEDIATE``): a read-modify-write inside it cannot interleave with another's.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sketchgen.errors import StorageError

__all__ = ["SqliteFile"]


class SqliteFile:
    path: Path

    def _open(self, path: Path | str, schema: str) -> None:
        """Use the file at ``path``, creating ``schema``'s tables (idempotent DDL)."""
        self.path = Path(path)
        self._local = threading.local()
        self._db().executescript(schema)  # executescript manages its own commit

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            self._local.db = db
        return db

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        db = self._db()
        try:
            db.execute("BEGIN IMMEDIATE")
            yield db
            db.execute("COMMIT")
        except sqlite3.Error as error:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise StorageError(f"sqlite: {error}") from error
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
