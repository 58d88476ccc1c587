"""Local deployment ceilings: ``MemoryDeploymentCeiling`` (one process) and
``SqliteDeploymentCeiling`` (a file shared by every process that opens it; ``BEGIN IMMEDIATE``
serialises each shard's read-modify-write, as the usage ledger's)."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable
from pathlib import Path

from sketchgen.adapters.ceiling_base import TransactionalDeploymentCeiling
from sketchgen.adapters.local._sqlite import SqliteFile
from sketchgen.ceiling import ShardDoc

__all__ = ["MemoryDeploymentCeiling", "SqliteDeploymentCeiling"]


class MemoryDeploymentCeiling(TransactionalDeploymentCeiling):
    def __init__(self, ceiling_usd: float, *, rng: random.Random | None = None) -> None:
        super().__init__(ceiling_usd, rng=rng)
        self._shards: dict[tuple[str, int], ShardDoc] = {}
        self._lock = threading.Lock()

    def _update_shard(
        self, day: str, shard: int, transition: Callable[[ShardDoc], tuple[ShardDoc | None, bool]]
    ) -> bool:
        with self._lock:
            changed, result = transition(self._shards.get((day, shard), ShardDoc(day)))
            if changed is not None:
                self._shards[(day, shard)] = changed
            return result

    def _read_shards(self, day: str) -> list[ShardDoc]:
        with self._lock:
            return [doc for (d, _), doc in self._shards.items() if d == day]


_SCHEMA = """
CREATE TABLE IF NOT EXISTS spend_ceiling (
    day TEXT NOT NULL, shard INTEGER NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (day, shard)
);
"""


class SqliteDeploymentCeiling(TransactionalDeploymentCeiling):
    """The day's shards as rows of one SQLite file (the job store's, by default)."""

    def __init__(
        self, path: Path | str, ceiling_usd: float, *, rng: random.Random | None = None
    ) -> None:
        super().__init__(ceiling_usd, rng=rng)
        self._file = SqliteFile(path, _SCHEMA)
        self.path = self._file.path

    def _update_shard(
        self, day: str, shard: int, transition: Callable[[ShardDoc], tuple[ShardDoc | None, bool]]
    ) -> bool:
        with self._file.transaction() as db:
            row = db.execute(
                "SELECT doc FROM spend_ceiling WHERE day = ? AND shard = ?", (day, shard)
            ).fetchone()
            current = ShardDoc.from_doc(day, json.loads(row[0]) if row else None)
            changed, result = transition(current)
            if changed is not None:
                db.execute(
                    "INSERT INTO spend_ceiling (day, shard, doc) VALUES (?, ?, ?) "
                    "ON CONFLICT (day, shard) DO UPDATE SET doc = excluded.doc",
                    (day, shard, json.dumps(changed.to_doc())),
                )
            return result

    def _read_shards(self, day: str) -> list[ShardDoc]:
        rows = (
            self._file.connection()
            .execute("SELECT doc FROM spend_ceiling WHERE day = ?", (day,))
            .fetchall()
        )
        return [ShardDoc.from_doc(day, json.loads(r[0])) for r in rows]
