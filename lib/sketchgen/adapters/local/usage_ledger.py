"""Local usage ledgers: ``MemoryUsageLedger`` (one process) and ``SqliteUsageLedger`` (a file,
shared by every process that opens it: ``BEGIN IMMEDIATE`` serialises the read-modify-write).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from sketchgen.errors import StorageError
from sketchgen.spend import Account, UsageDoc, UsageLedger

__all__ = ["MemoryUsageLedger", "SqliteUsageLedger"]

T = TypeVar("T")


class MemoryUsageLedger(UsageLedger):
    def __init__(self) -> None:
        self._usage: dict[str, UsageDoc] = {}
        self._accounts: dict[str, Account] = {}
        self._lock = threading.Lock()

    def _update(self, uid: str, transition: Callable[[UsageDoc], tuple[UsageDoc | None, T]]) -> T:
        with self._lock:
            changed, result = transition(self._usage.get(uid, UsageDoc()))
            if changed is not None:
                self._usage[uid] = changed
            return result

    def _admit(
        self, uid: str, transition: Callable[[Account, UsageDoc], tuple[UsageDoc | None, T]]
    ) -> T:
        with self._lock:
            account = self._accounts.get(uid, Account())
            changed, result = transition(account, self._usage.get(uid, UsageDoc()))
            if changed is not None:
                self._usage[uid] = changed
            return result

    def usage(self, uid: str) -> UsageDoc:
        with self._lock:
            return self._usage.get(uid, UsageDoc())

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


class SqliteUsageLedger(UsageLedger):
    """Usage and accounts in one SQLite file (the job store's, by default)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._db().executescript(_SCHEMA)

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
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

    def _read(self, db: sqlite3.Connection, table: str, uid: str) -> str | None:
        row = db.execute(f"SELECT doc FROM {table} WHERE uid = ?", (uid,)).fetchone()  # noqa: S608 - fixed tables
        return str(row[0]) if row else None

    def _update(self, uid: str, transition: Callable[[UsageDoc], tuple[UsageDoc | None, T]]) -> T:
        return self._admit(uid, lambda _, usage: transition(usage))

    def _admit(
        self, uid: str, transition: Callable[[Account, UsageDoc], tuple[UsageDoc | None, T]]
    ) -> T:
        with self._transaction() as db:
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
        raw = self._read(self._db(), "usage", uid)
        return UsageDoc.model_validate_json(raw) if raw else UsageDoc()

    def account(self, uid: str) -> Account:
        raw = self._read(self._db(), "accounts", uid)
        return Account.from_doc(json.loads(raw) if raw else None)

    def set_account(self, uid: str, account: Account) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO accounts (uid, doc) VALUES (?, ?) "
                "ON CONFLICT (uid) DO UPDATE SET doc = excluded.doc",
                (uid, account.model_dump_json()),
            )
