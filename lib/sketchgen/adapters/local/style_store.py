"""Local style stores: ``SqliteStyleStore`` (a file, shared by processes) and
``MemoryStyleStore`` (the same over a private in-memory database).

Documents are kept as their JSON, keyed as in Firestore: ``styles`` by id (with the owner as
a column to list by), ``style_references`` by ``(style_id, sha256)``.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sketchgen.errors import LimitError, NotFoundError, StorageError
from sketchgen.styles.owned import ReferenceDoc, StyleDoc

__all__ = ["MemoryStyleStore", "SqliteStyleStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS styles (
    style_id TEXT PRIMARY KEY,
    owner_uid TEXT NOT NULL,
    created_at TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS styles_by_owner ON styles (owner_uid, created_at);
CREATE TABLE IF NOT EXISTS style_references (
    style_id TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    embedding_model TEXT,
    doc TEXT NOT NULL,
    PRIMARY KEY (style_id, sha256)
);
"""


class SqliteStyleStore:
    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        # One connection, serialised by the lock: style writes are rare and small.
        self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                with self._db:  # commits, or rolls back on an exception
                    yield self._db
            except sqlite3.Error as error:
                raise StorageError(f"sqlite: {error}") from error

    def create_style(self, style: StyleDoc, *, limit: int | None = None) -> None:
        with self._tx() as db:
            db.execute("BEGIN IMMEDIATE")  # the count and the insert, one writer at a time
            if limit is not None:
                (count,) = db.execute(
                    "SELECT COUNT(*) FROM styles WHERE owner_uid = ?", (style.owner_uid,)
                ).fetchone()
                if count >= limit:
                    raise LimitError(
                        "limit_exceeded", f"at most {limit} styles a user", field="styles"
                    )
            db.execute(
                "INSERT INTO styles VALUES (?, ?, ?, ?)",
                (
                    style.style_id,
                    style.owner_uid,
                    style.created_at.isoformat(),
                    style.model_dump_json(),
                ),
            )

    def get_style(self, style_id: str) -> StyleDoc | None:
        with self._tx() as db:
            row = db.execute("SELECT doc FROM styles WHERE style_id = ?", (style_id,)).fetchone()
        return StyleDoc.model_validate_json(row[0]) if row else None

    def list_styles(self, owner_uid: str) -> list[StyleDoc]:
        with self._tx() as db:
            rows = db.execute(
                "SELECT doc FROM styles WHERE owner_uid = ? ORDER BY created_at, style_id",
                (owner_uid,),
            ).fetchall()
        return [StyleDoc.model_validate_json(r[0]) for r in rows]

    def put_style(self, style: StyleDoc) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE styles SET doc = ? WHERE style_id = ?",
                (style.model_dump_json(), style.style_id),
            )

    def delete_style(self, style_id: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM style_references WHERE style_id = ?", (style_id,))
            db.execute("DELETE FROM styles WHERE style_id = ?", (style_id,))

    def list_references(self, style_id: str) -> list[ReferenceDoc]:
        with self._tx() as db:
            rows = db.execute(
                "SELECT doc FROM style_references WHERE style_id = ? ORDER BY sha256", (style_id,)
            ).fetchall()
        return [ReferenceDoc.model_validate_json(r[0]) for r in rows]

    def get_reference(self, style_id: str, sha256: str) -> ReferenceDoc | None:
        with self._tx() as db:
            row = db.execute(
                "SELECT doc FROM style_references WHERE style_id = ? AND sha256 = ?",
                (style_id, sha256),
            ).fetchone()
        return ReferenceDoc.model_validate_json(row[0]) if row else None

    def put_reference(self, style_id: str, reference: ReferenceDoc) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO style_references VALUES (?, ?, ?, ?)",
                (
                    style_id,
                    reference.sha256,
                    reference.embedding_model,
                    reference.model_dump_json(),
                ),
            )

    def add_reference(self, style_id: str, reference: ReferenceDoc, *, limit: int) -> bool:
        with self._tx() as db:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute("SELECT doc FROM styles WHERE style_id = ?", (style_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"no style {style_id!r}")
            present = db.execute(
                "SELECT 1 FROM style_references WHERE style_id = ? AND sha256 = ?",
                (style_id, reference.sha256),
            ).fetchone()
            if present:
                return False
            (count,) = db.execute(
                "SELECT COUNT(*) FROM style_references WHERE style_id = ?", (style_id,)
            ).fetchone()
            if count >= limit:
                raise LimitError(
                    "limit_exceeded", f"at most {limit} references a style", field="references"
                )
            db.execute(
                "INSERT INTO style_references VALUES (?, ?, ?, ?)",
                (
                    style_id,
                    reference.sha256,
                    reference.embedding_model,
                    reference.model_dump_json(),
                ),
            )
            style = StyleDoc.model_validate_json(row[0])
            bumped = style.model_copy(
                update={"revision": style.revision + 1, "updated_at": datetime.now(UTC)}
            )
            db.execute(
                "UPDATE styles SET doc = ? WHERE style_id = ?",
                (bumped.model_dump_json(), style_id),
            )
            return True

    def delete_reference(self, style_id: str, sha256: str) -> None:
        with self._tx() as db:
            db.execute(
                "DELETE FROM style_references WHERE style_id = ? AND sha256 = ?",
                (style_id, sha256),
            )

    def references_not_embedded_by(
        self, model: str, *, limit: int
    ) -> list[tuple[str, ReferenceDoc]]:
        with self._tx() as db:
            rows = db.execute(
                "SELECT style_id, doc FROM style_references"
                " WHERE embedding_model IS NULL OR embedding_model != ? LIMIT ?",
                (model, limit),
            ).fetchall()
        return [(r[0], ReferenceDoc.model_validate_json(r[1])) for r in rows]


class MemoryStyleStore(SqliteStyleStore):
    """One process's styles, gone with it (tests, ``memory://`` job stores)."""

    def __init__(self) -> None:
        super().__init__(":memory:")
