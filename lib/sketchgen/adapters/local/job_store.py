"""Local job stores: ``MemoryJobStore`` (one process) and ``SqliteJobStore`` (a file).

Both run the transitions of :mod:`sketchgen.jobs` inside a real transaction: a lock for
memory, ``BEGIN IMMEDIATE`` for SQLite (safe across threads and processes sharing the file).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TypeVar

from sketchgen.adapters.job_pages import QUERY_SCAN_LIMIT, is_after, newest_first, page_of
from sketchgen.adapters.job_store_base import TransactionalJobStore, Transition
from sketchgen.adapters.local._sqlite import SqliteFile
from sketchgen.clock import SYSTEM_CLOCK
from sketchgen.errors import ConflictError
from sketchgen.jobs import JobRecord, job_matches
from sketchgen.ports import Clock, JobCursor, JobPage

__all__ = ["MemoryJobStore", "SqliteJobStore"]

T = TypeVar("T")


def _idempotent(existing: JobRecord | None, job: JobRecord) -> tuple[JobRecord, bool] | None:
    if existing is None:
        return None
    if existing.request_hash != job.request_hash:
        raise ConflictError("Idempotency-Key was already used with a different request")
    return existing, False


def _select(
    jobs: Sequence[JobRecord],
    owner_uid: str | None,
    style_id: str | None,
    job_ids: Sequence[str] | None,
    statuses: Sequence[str] | None,
    limit: int,
) -> list[JobRecord]:
    wanted = set(job_ids) if job_ids is not None else None
    chosen = [
        j
        for j in jobs
        if job_matches(j, owner_uid=owner_uid, style_id=style_id, statuses=statuses)
        and (wanted is None or j.job_id in wanted)
    ]
    return sorted(chosen, key=lambda j: j.created_at, reverse=True)[:limit]


class MemoryJobStore(TransactionalJobStore):
    def __init__(self, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.clock = clock
        self._jobs: dict[str, JobRecord] = {}
        self._keys: dict[tuple[str, str], str] = {}
        self._changed = threading.Condition()

    def create_job(self, job: JobRecord) -> tuple[JobRecord, bool]:
        with self._changed:
            if job.idempotency_key is not None:
                key = (job.owner_uid, job.idempotency_key)
                found = _idempotent(self._jobs.get(self._keys.get(key, "")), job)
                if found:
                    return found
                self._keys[key] = job.job_id
            self._jobs[job.job_id] = job
            self._changed.notify_all()
            return job, True

    def get_job(self, job_id: str) -> JobRecord | None:
        with self._changed:
            return self._jobs.get(job_id)

    def _update(self, job_id: str, transition: Transition[T]) -> T:
        with self._changed:
            changed, result = transition(self._jobs.get(job_id))
            if changed is not None:
                self._jobs[job_id] = changed
                self._changed.notify_all()
            return result

    def watch_job(self, job_id: str) -> AbstractContextManager[Iterator[JobRecord]]:
        return self._watch(job_id)

    @contextmanager
    def _watch(self, job_id: str) -> Iterator[Iterator[JobRecord]]:
        closed = threading.Event()

        def snapshots() -> Iterator[JobRecord]:
            last = None
            while not closed.is_set():
                with self._changed:
                    current = self._jobs.get(job_id)
                    if current is last:
                        # Wake now and then so a closed watch ends even if nothing changes.
                        self._changed.wait(timeout=1.0)
                        current = self._jobs.get(job_id)
                if current is not None and current is not last:
                    last = current
                    yield current

        try:
            yield snapshots()
        finally:
            closed.set()

    def list_jobs(
        self,
        *,
        owner_uid: str | None = None,
        style_id: str | None = None,
        job_ids: Sequence[str] | None = None,
        statuses: Sequence[str] | None = None,
        limit: int = 100,
    ) -> list[JobRecord]:
        with self._changed:
            jobs = list(self._jobs.values())
        return _select(jobs, owner_uid, style_id, job_ids, statuses, limit)

    def find_idempotent(self, owner_uid: str, idempotency_key: str) -> JobRecord | None:
        with self._changed:
            return self._jobs.get(self._keys.get((owner_uid, idempotency_key), ""))

    def delete_owner_jobs(self, owner_uid: str) -> list[str]:
        with self._changed:
            ids = sorted(j for j, job in self._jobs.items() if job.owner_uid == owner_uid)
            for job_id in ids:
                del self._jobs[job_id]
            for key in [k for k in self._keys if k[0] == owner_uid]:
                del self._keys[key]
            self._changed.notify_all()
            return ids

    def page_jobs(
        self,
        owner_uid: str,
        *,
        limit: int,
        cursor: JobCursor | None = None,
        style_id: str | None = None,
        query: str | None = None,
    ) -> JobPage:
        with self._changed:
            jobs = [
                j
                for j in self._jobs.values()
                if job_matches(j, owner_uid=owner_uid, style_id=style_id) and is_after(j, cursor)
            ]
        jobs.sort(key=newest_first, reverse=True)
        scan = QUERY_SCAN_LIMIT if query else limit
        return page_of(jobs[:scan], limit=limit, query=query, more=len(jobs) > scan)

    def delete_job(self, job_id: str) -> bool:
        with self._changed:
            job = self._jobs.pop(job_id, None)
            if job is not None and job.idempotency_key is not None:
                self._keys.pop((job.owner_uid, job.idempotency_key), None)
            self._changed.notify_all()
            return job is not None


_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    owner_uid TEXT NOT NULL,
    style_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 0,
    doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS idempotency (
    owner_uid TEXT NOT NULL,
    key TEXT NOT NULL,
    job_id TEXT NOT NULL,
    PRIMARY KEY (owner_uid, key)
);
CREATE INDEX IF NOT EXISTS jobs_by_owner ON jobs (owner_uid, created_at);
CREATE INDEX IF NOT EXISTS jobs_by_style ON jobs (style_id, created_at);
"""


class SqliteJobStore(TransactionalJobStore):
    """Jobs in one SQLite file; watchers poll the row's version every ``poll_s`` seconds."""

    def __init__(
        self, path: Path | str, *, poll_s: float = 0.1, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.clock = clock
        self._file = SqliteFile(path, _SCHEMA)
        self.path = self._file.path
        self.poll_s = poll_s

    @staticmethod
    def _load(row: tuple[str] | None) -> JobRecord | None:
        return JobRecord.from_doc(json.loads(row[0])) if row else None

    def create_job(self, job: JobRecord) -> tuple[JobRecord, bool]:
        with self._file.transaction() as db:
            if job.idempotency_key is not None:
                row = db.execute(
                    "SELECT doc FROM jobs JOIN idempotency USING (job_id) "
                    "WHERE idempotency.owner_uid = ? AND key = ?",
                    (job.owner_uid, job.idempotency_key),
                ).fetchone()
                found = _idempotent(self._load(row), job)
                if found:
                    return found
                db.execute(
                    "INSERT INTO idempotency VALUES (?, ?, ?)",
                    (job.owner_uid, job.idempotency_key, job.job_id),
                )
            db.execute(
                "INSERT INTO jobs (job_id, owner_uid, style_id, created_at, doc) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    job.job_id,
                    job.owner_uid,
                    job.request.style_id,
                    job.created_at.isoformat(),
                    job.model_dump_json(),
                ),
            )
        return job, True

    def get_job(self, job_id: str) -> JobRecord | None:
        row = (
            self._file.connection()
            .execute("SELECT doc FROM jobs WHERE job_id = ?", (job_id,))
            .fetchone()
        )
        return self._load(row)

    def _update(self, job_id: str, transition: Transition[T]) -> T:
        with self._file.transaction() as db:
            row = db.execute("SELECT doc FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
            changed, result = transition(self._load(row))
            if changed is not None:
                db.execute(
                    "UPDATE jobs SET doc = ?, version = version + 1 WHERE job_id = ?",
                    (changed.model_dump_json(), job_id),
                )
            return result

    def watch_job(self, job_id: str) -> AbstractContextManager[Iterator[JobRecord]]:
        return self._watch(job_id)

    @contextmanager
    def _watch(self, job_id: str) -> Iterator[Iterator[JobRecord]]:
        closed = threading.Event()

        def snapshots() -> Iterator[JobRecord]:
            version = -1
            while not closed.is_set():
                row = (
                    self._file.connection()
                    .execute("SELECT version, doc FROM jobs WHERE job_id = ?", (job_id,))
                    .fetchone()
                )
                if row and row[0] != version:
                    version = row[0]
                    yield JobRecord.from_doc(json.loads(row[1]))
                else:
                    time.sleep(self.poll_s)

        try:
            yield snapshots()
        finally:
            closed.set()

    def list_jobs(
        self,
        *,
        owner_uid: str | None = None,
        style_id: str | None = None,
        job_ids: Sequence[str] | None = None,
        statuses: Sequence[str] | None = None,
        limit: int = 100,
    ) -> list[JobRecord]:
        clauses, args = [], []
        for column, value in (("owner_uid", owner_uid), ("style_id", style_id)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        for expression, values in (
            ("job_id", job_ids),
            ("json_extract(doc, '$.status')", statuses),
        ):
            if values is not None:
                clauses.append(f"{expression} IN ({','.join('?' * len(values))})")
                args.extend(values)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = (
            self._file.connection()
            .execute(
                f"SELECT doc FROM jobs {where} ORDER BY created_at DESC LIMIT ?",  # noqa: S608 - fixed columns
                (*args, limit),
            )
            .fetchall()
        )
        return [JobRecord.from_doc(json.loads(r[0])) for r in rows]

    def find_idempotent(self, owner_uid: str, idempotency_key: str) -> JobRecord | None:
        row = (
            self._file.connection()
            .execute(
                "SELECT doc FROM jobs JOIN idempotency USING (job_id) "
                "WHERE idempotency.owner_uid = ? AND key = ?",
                (owner_uid, idempotency_key),
            )
            .fetchone()
        )
        return self._load(row)

    def delete_owner_jobs(self, owner_uid: str) -> list[str]:
        with self._file.transaction() as db:
            rows = db.execute(
                "SELECT job_id FROM jobs WHERE owner_uid = ? ORDER BY job_id", (owner_uid,)
            ).fetchall()
            db.execute("DELETE FROM idempotency WHERE owner_uid = ?", (owner_uid,))
            db.execute("DELETE FROM jobs WHERE owner_uid = ?", (owner_uid,))
        return [str(r[0]) for r in rows]

    def page_jobs(
        self,
        owner_uid: str,
        *,
        limit: int,
        cursor: JobCursor | None = None,
        style_id: str | None = None,
        query: str | None = None,
    ) -> JobPage:
        # created_at is stored as isoformat() of aware UTC datetimes: text order is time order.
        clauses, args = ["owner_uid = ?"], [owner_uid]
        if style_id is not None:
            clauses.append("style_id = ?")
            args.append(style_id)
        if cursor is not None:
            clauses.append("(created_at < ? OR (created_at = ? AND job_id < ?))")
            stamp = cursor.created_at.isoformat()
            args.extend((stamp, stamp, cursor.job_id))
        scan = QUERY_SCAN_LIMIT if query else limit
        rows = (
            self._file.connection()
            .execute(
                f"SELECT doc FROM jobs WHERE {' AND '.join(clauses)} "  # noqa: S608 - fixed columns
                "ORDER BY created_at DESC, job_id DESC LIMIT ?",
                (*args, scan + 1),
            )
            .fetchall()
        )
        jobs = [JobRecord.from_doc(json.loads(r[0])) for r in rows]
        return page_of(jobs[:scan], limit=limit, query=query, more=len(jobs) > scan)

    def delete_job(self, job_id: str) -> bool:
        with self._file.transaction() as db:
            db.execute("DELETE FROM idempotency WHERE job_id = ?", (job_id,))
            return db.execute("DELETE FROM jobs WHERE job_id = ?", (job_id,)).rowcount > 0
