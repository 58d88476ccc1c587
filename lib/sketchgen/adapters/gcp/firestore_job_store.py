"""``FirestoreJobStore``: the job document in Firestore (``jobs/{job_id}``).

Mobile clients read these documents directly (``firestore.rules``), so the document is the
plain JobRecord shape, datetimes as Firestore timestamps, plus a top-level ``style_id`` for
queries. Every change runs a transition from :mod:`sketchgen.jobs` and is written back
under an ``update_time`` precondition (:mod:`._firestore`), so concurrent workers never
overwrite each other.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, TypeVar

from sketchgen.adapters.gcp._firestore import client_for, optimistic_update
from sketchgen.adapters.job_pages import QUERY_SCAN_LIMIT, page_of
from sketchgen.adapters.job_store_base import TransactionalJobStore, Transition
from sketchgen.errors import ConflictError, StorageError
from sketchgen.jobs import JobRecord, job_matches
from sketchgen.ports import JobCursor, JobPage

__all__ = ["FirestoreJobStore"]

T = TypeVar("T")
_TRANSACTION_ATTEMPTS = 10  # job creation (two documents); contention there is rare


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def to_doc(job: JobRecord) -> dict[str, Any]:
    doc: dict[str, Any] = _plain(job.to_doc())
    doc["style_id"] = job.request.style_id
    return doc


def from_doc(doc: dict[str, Any]) -> JobRecord:
    return JobRecord.from_doc({k: v for k, v in doc.items() if k != "style_id"})


class FirestoreJobStore(TransactionalJobStore):
    def __init__(
        self,
        client: Any | None = None,
        *,
        project: str | None = None,
        database: str = "(default)",
        collection: str = "jobs",
    ) -> None:
        self._client = client
        self._project = project
        self._database = database
        self.collection = collection

    @property
    def client(self) -> Any:
        return self._client or client_for(self._project, self._database)

    def _ref(self, job_id: str) -> Any:
        return self.client.collection(self.collection).document(job_id)

    def _run(self, body: Callable[[Any], T]) -> T:
        from google.api_core import exceptions
        from google.cloud import firestore

        try:
            transaction = self.client.transaction(max_attempts=_TRANSACTION_ATTEMPTS)
            return firestore.transactional(body)(transaction)  # type: ignore[no-any-return]
        except exceptions.GoogleAPICallError as error:
            raise StorageError(f"firestore: {error.message}") from error
        except ValueError as error:  # the SDK's "failed to commit after N attempts"
            raise StorageError(f"firestore: {error}") from error

    def create_job(self, job: JobRecord) -> tuple[JobRecord, bool]:
        ref = self._ref(job.job_id)
        key_ref = None
        if job.idempotency_key is not None:
            digest = hashlib.sha256(f"{job.owner_uid}\0{job.idempotency_key}".encode()).hexdigest()
            key_ref = self.client.collection("idempotency").document(digest)

        def create(transaction: Any) -> tuple[JobRecord, bool]:
            if key_ref is not None:
                claimed = key_ref.get(transaction=transaction)
                if claimed.exists:
                    existing = self._ref(claimed.get("job_id")).get(transaction=transaction)
                    found = from_doc(existing.to_dict()) if existing.exists else None
                    if found is not None and found.request_hash != job.request_hash:
                        raise ConflictError(
                            "Idempotency-Key was already used with a different request"
                        )
                    if found is not None:
                        return found, False
                transaction.set(
                    key_ref,
                    {"job_id": job.job_id, "owner_uid": job.owner_uid, "expire_at": job.expire_at},
                )
            transaction.create(ref, to_doc(job))
            return job, True

        return self._run(create)

    def get_job(self, job_id: str) -> JobRecord | None:
        from google.api_core import exceptions

        try:
            snapshot = self._ref(job_id).get()
        except exceptions.GoogleAPICallError as error:
            raise StorageError(f"firestore: {error.message}") from error
        return from_doc(snapshot.to_dict()) if snapshot.exists else None

    def _update(self, job_id: str, transition: Transition[T]) -> T:
        def transform(doc: dict[str, Any] | None) -> tuple[dict[str, Any] | None, T]:
            changed, result = transition(from_doc(doc) if doc is not None else None)
            return (to_doc(changed) if changed is not None else None), result

        return optimistic_update(self.client, self._ref(job_id), transform, what=f"job {job_id}")

    def watch_job(self, job_id: str) -> AbstractContextManager[Iterator[JobRecord]]:
        return self._watch(job_id)

    @contextmanager
    def _watch(self, job_id: str) -> Iterator[Iterator[JobRecord]]:
        snapshots: queue.Queue[JobRecord] = queue.Queue()
        closed = threading.Event()

        def on_snapshot(documents: list[Any], changes: Any, read_time: Any) -> None:
            for document in documents:
                if document.exists:
                    snapshots.put(from_doc(document.to_dict()))

        watch = self._ref(job_id).on_snapshot(on_snapshot)

        def iterate() -> Iterator[JobRecord]:
            while not closed.is_set():
                try:
                    yield snapshots.get(timeout=1.0)
                except queue.Empty:
                    continue

        try:
            yield iterate()
        finally:
            closed.set()
            watch.unsubscribe()

    def list_jobs(
        self,
        *,
        owner_uid: str | None = None,
        style_id: str | None = None,
        job_ids: Sequence[str] | None = None,
        statuses: Sequence[str] | None = None,
        limit: int = 100,
    ) -> list[JobRecord]:
        from google.cloud import firestore

        if job_ids is not None:
            refs = [self._ref(j) for j in job_ids]
            found = [from_doc(s.to_dict()) for s in self.client.get_all(refs) if s.exists]
            jobs = [
                j
                for j in found
                if job_matches(j, owner_uid=owner_uid, style_id=style_id, statuses=statuses)
            ]
            return sorted(jobs, key=lambda j: j.created_at, reverse=True)[:limit]
        query = self.client.collection(self.collection)
        if owner_uid is not None:
            query = query.where(filter=firestore.FieldFilter("owner_uid", "==", owner_uid))
        if style_id is not None:
            query = query.where(filter=firestore.FieldFilter("style_id", "==", style_id))
        if statuses is not None:
            query = query.where(filter=firestore.FieldFilter("status", "in", list(statuses)))
        query = query.order_by("created_at", direction=firestore.Query.DESCENDING).limit(limit)
        return [from_doc(s.to_dict()) for s in query.stream()]

    def page_jobs(
        self,
        owner_uid: str,
        *,
        limit: int,
        cursor: JobCursor | None = None,
        style_id: str | None = None,
        query: str | None = None,
    ) -> JobPage:
        """owner_uid (+ style_id) ==, created_at and then the document id descending: the
        composite indexes ``jobs_by_owner`` / ``jobs_by_owner_and_style`` in Terraform. A
        brief search reads at most QUERY_SCAN_LIMIT documents and filters them here."""
        from google.api_core import exceptions
        from google.cloud import firestore

        collection = self.client.collection(self.collection)
        ordered = collection.where(filter=firestore.FieldFilter("owner_uid", "==", owner_uid))
        if style_id is not None:
            ordered = ordered.where(filter=firestore.FieldFilter("style_id", "==", style_id))
        ordered = ordered.order_by("created_at", direction=firestore.Query.DESCENDING).order_by(
            "__name__", direction=firestore.Query.DESCENDING
        )
        if cursor is not None:
            ordered = ordered.start_after(
                {"created_at": cursor.created_at, "__name__": self._ref(cursor.job_id)}
            )
        scan = QUERY_SCAN_LIMIT if query else limit
        try:
            jobs = [from_doc(s.to_dict()) for s in ordered.limit(scan + 1).stream()]
        except exceptions.GoogleAPICallError as error:
            raise StorageError(f"firestore: {error.message}") from error
        return page_of(jobs[:scan], limit=limit, query=query, more=len(jobs) > scan)

    def delete_job(self, job_id: str) -> bool:
        """The job document and every document under it (its sketches' subcollection, where
        the store keeps one), in batches of at most 500 writes."""
        from google.api_core import exceptions

        ref = self._ref(job_id)
        try:
            existed = bool(ref.get().exists)
            _delete_tree(ref)
        except exceptions.GoogleAPICallError as error:
            raise StorageError(f"firestore: {error.message}") from error
        return existed

    def _idempotency_ref(self, owner_uid: str, idempotency_key: str) -> Any:
        digest = hashlib.sha256(f"{owner_uid}\0{idempotency_key}".encode()).hexdigest()
        return self.client.collection("idempotency").document(digest)

    def find_idempotent(self, owner_uid: str, idempotency_key: str) -> JobRecord | None:
        from google.api_core import exceptions

        try:
            claimed = self._idempotency_ref(owner_uid, idempotency_key).get()
        except exceptions.GoogleAPICallError as error:
            raise StorageError(f"firestore: {error.message}") from error
        if not claimed.exists or claimed.get("owner_uid") != owner_uid:
            return None
        return self.get_job(str(claimed.get("job_id")))

    def delete_owner_jobs(self, owner_uid: str) -> list[str]:
        """Each job document with every document in its subcollections (whatever they are
        called: a document's subcollections outlive it), then the owner's idempotency keys."""
        from google.api_core import exceptions
        from google.cloud import firestore

        owned = firestore.FieldFilter("owner_uid", "==", owner_uid)
        deleted = []
        try:
            for snapshot in self.client.collection(self.collection).where(filter=owned).stream():
                _delete_tree(snapshot.reference)
                deleted.append(snapshot.id)
            for key in self.client.collection("idempotency").where(filter=owned).stream():
                key.reference.delete()
        except exceptions.GoogleAPICallError as error:
            raise StorageError(f"firestore: {error.message}") from error
        return sorted(deleted)


def _delete_tree(document: Any) -> None:
    """``document`` and every document under it, at any depth (``list_documents`` also
    yields documents that exist only as the parent of a subcollection)."""
    for subcollection in document.collections():
        for child in subcollection.list_documents():
            _delete_tree(child)
    document.delete()
