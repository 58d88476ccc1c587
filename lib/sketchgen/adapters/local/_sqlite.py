"""One SQLite file shared by threads and processes: what the local SQLite stores need the
same way (docs/decisions/0064).

A connection per thread (a connection is not shared between threads), in autocommit mode so
that ``BEGIN IMMEDIATE`` is ours to issue, with a 30 s busy timeout, and the file in WAL mode
so that readers never wait for a writer. :meth:`SqliteFile.transaction` takes the write lock
up front (``BEGIN IMMEDIATE``): a read-modify-write inside it cannot interleave with
another's, in this process or another that opened the same file. Several stores may open the
same file (the job store's, by default: favourites, the usage ledger, the ceiling); each
keeps its own tables and connections, and SQLite's file lock serialises their writes.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sketchgen.errors import StorageError

__all__ = ["BUSY_TIMEOUT_S", "SqliteFile"]

BUSY_TIMEOUT_S = 30.0  # how long a writer waits for another's lock before an error


class SqliteFile:
    """The file at ``path``, with ``schema`` (idempotent DDL) applied once on opening."""

    def __init__(self, path: Path | str, schema: str) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self.connection().executescript(schema)  # executescript manages its own commit

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use)."""
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            self._local.db = db
        return db

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``; rolled back on any error, a SQLite one raised as
        :class:`StorageError`."""
        db = self.connection()
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
