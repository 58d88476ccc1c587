"""Local usage ledgers: ``MemoryUsageLedger`` (one process; the usage in shards, as in
Firestore: :mod:`sketchgen.usage_shards`) and ``SqliteUsageLedger`` (a file, shared by every
process that opens it: ``BEGIN IMMEDIATE`` serialises the read-modify-write of one row per
user; a file has no per-document write limit to spread).
"""

from __future__ import annotations

import json
import random
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sketchgen.adapters.local._sqlite import SqliteFile
from sketchgen.adapters.usage_ledger_base import ShardedUsageLedger, TransactionalUsageLedger
from sketchgen.clock import SYSTEM_CLOCK
from sketchgen.ports import Clock
from sketchgen.spend import Account, Limits, UsageDoc
from sketchgen.usage_shards import UsageShard

__all__ = ["MemoryUsageLedger", "SqliteUsageLedger"]

T = TypeVar("T")


class MemoryUsageLedger(ShardedUsageLedger):
    """The usage in the same shards as Firestore's (so the shard rules run wherever the
    ledgers' contract does), each with a version, committed under one lock."""

    def __init__(self, *, clock: Clock = SYSTEM_CLOCK, rng: random.Random | None = None) -> None:
        super().__init__(clock=clock, rng=rng)
        self._shards: dict[tuple[str, int], tuple[UsageShard, int]] = {}
        self._accounts: dict[str, Account] = {}
        self._lock = threading.Lock()
        self._version = 0

    def _read(
        self, uid: str, *, account: bool
    ) -> tuple[Account | None, list[tuple[UsageShard | None, Any]]]:
        with self._lock:
            who = self._accounts.get(uid, Account()) if account else None
            read: list[tuple[UsageShard | None, Any]] = [
                self._shards.get((uid, i), (None, None)) for i in range(self.shards)
            ]
            return who, read

    def _commit(self, uid: str, writes: dict[int, tuple[UsageShard, Any]]) -> bool:
        with self._lock:
            current = {i: self._shards.get((uid, i), (None, None))[1] for i in writes}
            if any(current[i] != version for i, (_, version) in writes.items()):
                return False
            if not self._admitted(uid, sorted(writes)):
                return False
            for i, (shard, _) in writes.items():
                self._version += 1
                self._shards[(uid, i)] = (shard, self._version)
            return True

    def _admitted(self, uid: str, shards: list[int]) -> bool:
        """Whether the store takes this commit (a test's contention model says no)."""
        return True

    def account(self, uid: str) -> Account:
        with self._lock:
            return self._accounts.get(uid, Account())

    def set_account(self, uid: str, account: Account) -> None:
        with self._lock:
            self._accounts[uid] = account


_SCHEMA = """
CREATE TABLE IF NOT EXISTS usage (uid TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (uid TEXT PRIMARY KEY, doc TEXT NOT NULL);
"""


class SqliteUsageLedger(TransactionalUsageLedger):
    """Usage and accounts in one SQLite file (the job store's, by default)."""

    def __init__(self, path: Path | str) -> None:
        self._file = SqliteFile(path, _SCHEMA)
        self.path = self._file.path

    def _read(self, db: sqlite3.Connection, table: str, uid: str) -> str | None:
        row = db.execute(f"SELECT doc FROM {table} WHERE uid = ?", (uid,)).fetchone()  # noqa: S608 - fixed tables
        return str(row[0]) if row else None

    def _update(
        self,
        uid: str,
        transition: Callable[[UsageDoc], tuple[UsageDoc | None, T]],
        limits: Limits | None = None,
    ) -> T:
        return self._admit(uid, lambda _, usage: transition(usage), lambda _: limits)

    def _admit(
        self,
        uid: str,
        transition: Callable[[Account, UsageDoc], tuple[UsageDoc | None, T]],
        limits: Callable[[Account], Limits | None] | None = None,
    ) -> T:
        # One transaction over the whole file (BEGIN IMMEDIATE): one row per user, no limit
        # to hold per part, so ``limits`` is not needed.
        with self._file.transaction() as db:
            raw = self._read(db, "usage", uid)
            current = UsageDoc.model_validate_json(raw) if raw else UsageDoc()
            raw_account = self._read(db, "accounts", uid)
            account = Account.from_doc(json.loads(raw_account) if raw_account else None)
            changed, result = transition(account, current)
            if changed is not None:
                db.execute(
                    "INSERT INTO usage (uid, doc) VALUES (?, ?) "
                    "ON CONFLICT (uid) DO UPDATE SET doc = excluded.doc",
                    (uid, changed.model_dump_json()),
                )
            return result

    def usage(self, uid: str) -> UsageDoc:
        raw = self._read(self._file.connection(), "usage", uid)
        return UsageDoc.model_validate_json(raw) if raw else UsageDoc()

    def account(self, uid: str) -> Account:
        raw = self._read(self._file.connection(), "accounts", uid)
        return Account.from_doc(json.loads(raw) if raw else None)

    def set_account(self, uid: str, account: Account) -> None:
        with self._file.transaction() as db:
            db.execute(
                "INSERT INTO accounts (uid, doc) VALUES (?, ?) "
                "ON CONFLICT (uid) DO UPDATE SET doc = excluded.doc",
                (uid, account.model_dump_json()),
            )
