"""One SQLite file shared by threads and processes: what the local SQLite stores need the
same way (docs/decisions/0064).

A connection per thread (a connection is not shared between threads), in autocommit mode so
that ``BEGIN IMMEDIATE`` is ours to issue, with a 30 s busy timeout, and the file in WAL mode
so that readers never wait for a writer. WAL is the file's, not a connection's: it is set once,
when the file is opened, and retried there while another opener holds the file (SQLite reports
that at once, without waiting out the busy timeout). :meth:`SqliteFile.transaction` takes the
write lock up front (``BEGIN IMMEDIATE``): a read-modify-write inside it cannot interleave with
another's, in this process or another that opened the same file. Several stores may open the
same file (the job store's, by default: favourites, the usage ledger, the ceiling); each
keeps its own tables and connections, and SQLite's file lock serialises their writes.
"""

from __future__ import annotations

import sqlite3
import threading
import time
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
        db = self.connection()
        _use_wal(db)
        db.executescript(schema)  # executescript manages its own commit

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use)."""
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
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


def _use_wal(db: sqlite3.Connection) -> None:
    """Switch the file to WAL. Switching needs the file to itself, and when several processes
    open the same new file at once SQLite answers "database is locked" without calling the
    busy handler: retried with a growing pause, up to the busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    pause = 0.001
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() + pause > deadline:
                raise StorageError(f"sqlite: {error}") from error
        time.sleep(pause)  # not synchronisation: another opener holds the file; wait it out
        pause = min(pause * 2, 0.1)
