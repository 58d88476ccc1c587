"""``FirestoreJobStore``: a job in Firestore, its sketches in documents of their own.

Firestore sustains about one write a second per document, so no document is written by
every sketch (docs/decisions/0024-per-sketch-documents.md):

- ``jobs/{job_id}``: the job as created (every sketch pending), written again only when the
  job is cancelled (``cancel_requested``), waits on a Batch API batch, or is final (with every
  sketch's final state copied in, so a final job is one read). At most four writes in its life.
- ``jobs/{job_id}/sketches/{i}``: sketch ``i``'s claim (lease), progress and result, written
  by the worker that holds it: created by the first claim, ended once.
- ``jobs/{job_id}/markers/final``: created (create-if-absent) by the one caller that finalises.

Readers see one :class:`JobRecord`: the job document with its sketch documents laid over it;
the job is ``running`` once a sketch has started. A sketch's ``seq`` (the SSE event id) is its
rank in the order the sketches' ending writes were committed (a document's update time; ties,
only within one commit, by index): every read is a consistent snapshot, so a later read only
adds sketches after the ones already seen, and no counter document is needed.

Every change runs a transition from :mod:`sketchgen.jobs`, so the rules live once and every
store keeps one contract. A worker's claim, finish and release write only the sketch's own
document, under a precondition on it (no locks: a job's sketches never wait on each other);
after a finish, the sketches are read and, if all have ended, the final marker decides the one
finaliser. What touches several sketches (a cancel, a deadline, the final write) runs in a
transaction that reads the job and every sketch and writes back only what changed. Mobile
clients read the same documents (``firestore.rules``: the owner reads the job and its
sketches, nobody writes).
"""

from __future__ import annotations

import hashlib
import queue
import random
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import Any, TypeVar

from sketchgen.adapters.gcp._firestore import client_for, optimistic_update_reading
from sketchgen.adapters.job_pages import QUERY_SCAN_LIMIT, page_of
from sketchgen.adapters.job_store_base import TransactionalJobStore, Transition
from sketchgen.clock import SYSTEM_CLOCK
from sketchgen.errors import ConflictError, StorageError
from sketchgen.jobs import (
    TERMINAL_JOB,
    TERMINAL_SKETCH,
    CallResult,
    Claim,
    ClaimResult,
    FinishResult,
    JobRecord,
    SketchState,
    call_transition,
    claim_transition,
    finish_transition,
    job_matches,
    known_fields,
    release_transition,
    renew_transition,
)
from sketchgen.ports import Clock, JobCursor, JobPage

__all__ = ["FirestoreJobStore", "from_doc", "to_doc"]

T = TypeVar("T")
_ATTEMPTS_PER_TRY = 3  # the SDK's own retries of an aborted transaction (immediate)
_TRIES = 12  # then ours, backing off on the clock: contention clears in about a second
# Job fields the sketch documents decide, never written to the job document mid-life.
_DERIVED = frozenset({"sketches", "event_seq", "updated_at", "status"})


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


def sketch_to_doc(state: SketchState) -> dict[str, Any]:
    # No seq: readers derive it from the order the ending writes were committed in.
    doc: dict[str, Any] = _plain(state.model_dump(mode="python", exclude={"seq"}))
    return doc


def sketch_from_doc(doc: dict[str, Any]) -> SketchState:
    return SketchState.model_validate(known_fields(SketchState, doc))


def assemble(job_doc: dict[str, Any], sketches: dict[str, tuple[dict[str, Any], Any]]) -> JobRecord:
    """The job as readers see it: ``sketches`` maps an index to (document, update time)."""
    job = from_doc(job_doc)
    if job.is_final:
        return job  # the final write copied every sketch in
    states = dict(job.sketches)
    updated = job.updated_at
    ended = []
    for key, (doc, update_time) in sketches.items():
        if key in states:
            states[key] = sketch_from_doc(doc)
            at = update_time or states[key].ended_at or updated
            if at > updated:
                updated = at
            if states[key].status in TERMINAL_SKETCH:
                ended.append((at, int(key)))
    for seq, (_, index) in enumerate(sorted(ended), start=1):
        states[str(index)] = states[str(index)].model_copy(update={"seq": seq})
    started = any(s.status != "pending" for s in states.values())
    return job.model_copy(
        update={
            "sketches": states,
            "event_seq": len(ended),
            "status": "running" if started else "queued",
            "updated_at": updated,
        }
    )


def _job_fields(job: JobRecord) -> dict[str, Any]:
    return {k: v for k, v in job.to_doc().items() if k not in _DERIVED}


class FirestoreJobStore(TransactionalJobStore):
    def __init__(
        self,
        client: Any | None = None,
        *,
        project: str | None = None,
        database: str = "(default)",
        collection: str = "jobs",
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._client = client
        self._project = project
        self._database = database
        self.collection = collection
        self.clock = clock
        self._rng = random.Random()

    @property
    def client(self) -> Any:
        return self._client or client_for(self._project, self._database)

    def _ref(self, job_id: str) -> Any:
        return self.client.collection(self.collection).document(job_id)

    def _sketch_ref(self, job_id: str, key: str) -> Any:
        return self._ref(job_id).collection("sketches").document(key)

    def _marker_ref(self, job_id: str) -> Any:
        return self._ref(job_id).collection("markers").document("final")

    def _run(self, body: Callable[[Any], T]) -> T:
        """``body`` in a transaction; refused for contention, tried again after a pause."""
        from google.api_core import exceptions
        from google.cloud import firestore

        for attempt in range(_TRIES):
            try:
                transaction = self.client.transaction(max_attempts=_ATTEMPTS_PER_TRY)
                # The ignore below: the SDK's transactional() is untyped
                return firestore.transactional(body)(transaction)  # type: ignore[no-any-return]
            except exceptions.Aborted:
                pass
            except ValueError as error:  # the SDK's "failed to commit after N attempts"
                if not isinstance(error.__cause__, exceptions.Aborted):
                    raise StorageError(f"firestore: {error}") from error
            except exceptions.GoogleAPICallError as error:
                raise StorageError(f"firestore: {error.message}") from error
            self.clock.sleep(self._rng.uniform(0.5, 1.0) * min(2.0, 0.1 * 2**attempt))
        raise StorageError("firestore: the job is too contended to update, retry")

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
                    existing = self._read(claimed.get("job_id"), transaction)
                    if existing is not None and existing.request_hash != job.request_hash:
                        raise ConflictError(
                            "Idempotency-Key was already used with a different request"
                        )
                    if existing is not None:
                        return existing, False
                transaction.set(
                    key_ref,
                    {"job_id": job.job_id, "owner_uid": job.owner_uid, "expire_at": job.expire_at},
                )
            transaction.create(ref, to_doc(job))
            return job, True

        return self._run(create)

    # -- reading -----------------------------------------------------------------------------

    def _read(self, job_id: str, transaction: Any = None) -> JobRecord | None:
        snapshot = self._ref(job_id).get(transaction=transaction)
        if not snapshot.exists:
            return None
        return self._assembled(job_id, snapshot.to_dict(), transaction)

    def _assembled(self, job_id: str, doc: dict[str, Any], transaction: Any = None) -> JobRecord:
        """The job from its stored document: an ended job's has every sketch copied in; a
        live one's sketches are read from their own documents."""
        if doc.get("status") in TERMINAL_JOB:
            return from_doc(doc)
        refs = [self._sketch_ref(job_id, key) for key in doc.get("sketches", {})]
        found = self.client.get_all(refs, transaction=transaction)
        return assemble(doc, {s.id: (s.to_dict(), s.update_time) for s in found if s.exists})

    def get_job(self, job_id: str) -> JobRecord | None:
        from google.api_core import exceptions

        try:
            return self._read(job_id)
        except exceptions.GoogleAPICallError as error:
            raise StorageError(f"firestore: {error.message}") from error

    def get_sketch(self, job_id: str, index: int) -> SketchState | None:
        """The job's document and the sketch's own, in one read (not every sketch's): the
        worker's check for a cancel, every second while the model draws."""
        from google.api_core import exceptions

        key = str(index)
        job_ref, own_ref = self._ref(job_id), self._sketch_ref(job_id, key)
        try:
            found = {s.reference.path: s for s in self.client.get_all([job_ref, own_ref])}
        except exceptions.GoogleAPICallError as error:
            raise StorageError(f"firestore: {error.message}") from error
        job_snapshot, own = found.get(job_ref.path), found.get(own_ref.path)
        if job_snapshot is None or not job_snapshot.exists:
            return None
        job_doc = job_snapshot.to_dict()
        if job_doc.get("status") in TERMINAL_JOB or own is None or not own.exists:
            state = from_doc(job_doc).sketches.get(key)
        else:
            state = assemble(job_doc, {key: (own.to_dict(), own.update_time)}).sketches.get(key)
        return None if state is None else state.model_copy(update={"seq": None})

    # -- changing ----------------------------------------------------------------------------

    def _write(self, transaction: Any, before: JobRecord, after: JobRecord) -> None:
        """Write only what ``after`` changed: its sketches' documents, and the job document
        when a job field changed (a cancel, a batch) or the job became final."""
        job_id = before.job_id
        for key, state in after.sketches.items():
            if state != before.sketches.get(key):
                transaction.set(self._sketch_ref(job_id, key), sketch_to_doc(state))
        if after.is_final:
            transaction.set(self._ref(job_id), to_doc(after))
        elif _job_fields(after) != _job_fields(before):
            changed = {k: v for k, v in _job_fields(after).items() if v != _job_fields(before)[k]}
            changed["updated_at"] = after.updated_at
            transaction.update(self._ref(job_id), _plain(changed))

    def _update(self, job_id: str, transition: Transition[T]) -> T:
        def body(transaction: Any) -> T:
            current = self._read(job_id, transaction)
            changed, result = transition(current)
            if changed is not None and current is not None:
                self._write(transaction, current, changed)
            return result

        return self._run(body)

    def _on_own_sketch(
        self,
        job_id: str,
        index: int,
        step: Callable[[JobRecord], tuple[JobRecord | None, T]],
        missing: T,
    ) -> T | None:
        """Apply ``step`` to the job as seen by sketch ``index`` alone (the job document and
        the sketch's own document) and write only that sketch's document, under a precondition
        on it. None: the job needs the full path (it is final, cancelled or past its deadline,
        or has no such sketch); ``missing`` when there is no such job."""
        key = str(index)
        full = object()

        def transform(
            own: dict[str, Any] | None, others: list[dict[str, Any] | None]
        ) -> tuple[dict[str, Any] | None, Any]:
            (job_doc,) = others
            if job_doc is None:
                return None, missing
            job = from_doc(job_doc)
            expired = job.deadline is not None and self.clock.now() >= job.deadline
            if job.is_final or job.cancel_requested or expired or key not in job.sketches:
                return None, full
            view = assemble(job_doc, {key: (own, None)} if own is not None else {})
            view = view.model_copy(update={"sketches": {key: view.sketches[key]}})
            changed, result = step(view)
            return (sketch_to_doc(changed.sketch(index)) if changed else None), result

        result = optimistic_update_reading(
            self.client,
            self._sketch_ref(job_id, key),
            [self._ref(job_id)],
            transform,
            what=f"sketch {job_id}/{index}",
            clock=self.clock,
        )
        return None if result is full else result

    def claim_sketch(
        self, job_id: str, index: int, *, worker: str, lease_s: float, now: datetime | None = None
    ) -> ClaimResult:
        """The claims of a job's sketches (sent at once) and the deliveries polling a live
        lease write only their own sketch, without locks; a cancelled or expired job's claim
        ends every pending sketch and takes the full path."""
        at = now or self.clock.now()
        result = self._on_own_sketch(
            job_id,
            index,
            lambda job: claim_transition(job, index, worker, lease_s, at),
            ClaimResult(claim=Claim.MISSING),
        )
        if result is None:
            full = super().claim_sketch(job_id, index, worker=worker, lease_s=lease_s, now=at)
            if full.finalize:
                marked = self._marked(job_id, FinishResult(accepted=True, finalize=True))
                return full.model_copy(update={"finalize": marked.finalize})
            return full
        if result.claim is Claim.LEASED or result.job is None:
            return result
        # The worker needs the whole job (its plan; whether every sketch has ended).
        return result.model_copy(update={"job": self.get_job(job_id)})

    def finish_sketch(
        self,
        job_id: str,
        index: int,
        *,
        worker: str,
        state: SketchState,
        now: datetime | None = None,
    ) -> FinishResult:
        """The sketch's own document ends; then, if every sketch has ended, the caller that
        creates the final marker finalises. Of two sketches ending at once, the later commit
        reads after both, so one of them always sees every sketch ended."""
        at = now or self.clock.now()
        result = self._on_own_sketch(
            job_id,
            index,
            lambda job: finish_transition(job, index, worker, state, at),
            FinishResult(accepted=False),
        )
        if result is None:  # a cancel was asked: the pending sketches end with this one
            full = super().finish_sketch(job_id, index, worker=worker, state=state, now=at)
            return self._marked(job_id, full)
        if not result.accepted:
            return result.model_copy(update={"job": self.get_job(job_id)})
        job = self.get_job(job_id)
        ended = FinishResult(accepted=True, finalize=job is not None and job.all_ended, job=job)
        return self._marked(job_id, ended)

    def release_sketch(
        self, job_id: str, index: int, *, worker: str, error: str | None, refund: bool = False
    ) -> None:
        at = self.clock.now()
        released = self._on_own_sketch(
            job_id,
            index,
            lambda job: (release_transition(job, index, worker, error, at, refund=refund), True),
            True,
        )
        if released is None:
            super().release_sketch(job_id, index, worker=worker, error=error, refund=refund)

    def renew_lease(
        self, job_id: str, index: int, *, worker: str, lease_s: float, now: datetime | None = None
    ) -> bool:
        """One write on the sketch's own document (under a precondition on it), as a claim;
        a cancelled or final job's sketch is never renewed."""
        at = now or self.clock.now()
        renewed = self._on_own_sketch(
            job_id, index, lambda job: renew_transition(job, index, worker, lease_s, at), False
        )
        if renewed is None:  # cancelled, final or past its deadline: decided on the whole job
            return super().renew_lease(job_id, index, worker=worker, lease_s=lease_s, now=at)
        return renewed

    def count_call(self, job_id: str, index: int, *, worker: str) -> CallResult:
        at = self.clock.now()
        counted = self._on_own_sketch(
            job_id,
            index,
            lambda job: call_transition(job, index, worker, at),
            CallResult(held=False),
        )
        return counted if counted is not None else CallResult(held=False)

    def cancel_job(
        self, job_id: str, now: datetime | None = None, *, running: bool = True
    ) -> FinishResult:
        return self._marked(job_id, super().cancel_job(job_id, now, running=running))

    def _marked(self, job_id: str, result: FinishResult) -> FinishResult:
        """Exactly one finaliser: of the callers that saw every sketch ended, the one that
        creates the job's final marker (create-if-absent). A marker already there is seen by a
        read (free) rather than a refused create (a write attempt on a contended document)."""
        if not result.finalize:
            return result
        from google.api_core import exceptions

        marker = self._marker_ref(job_id)
        for attempt in range(_TRIES):
            try:
                if marker.get().exists:
                    break
                marker.create({"at": self.clock.now()})
                return result
            except (exceptions.AlreadyExists, exceptions.Conflict):
                break
            except exceptions.Aborted:
                self.clock.sleep(self._rng.uniform(0.5, 1.0) * min(2.0, 0.1 * 2**attempt))
            except exceptions.GoogleAPICallError as error:
                raise StorageError(f"firestore: {error.message}") from error
        return result.model_copy(update={"finalize": False})

    # -- watching and listing ----------------------------------------------------------------

    def watch_job(self, job_id: str) -> AbstractContextManager[Iterator[JobRecord]]:
        return self._watch(job_id)

    @contextmanager
    def _watch(self, job_id: str) -> Iterator[Iterator[JobRecord]]:
        """Two listeners (the job, its sketches), one stream of whole jobs."""
        snapshots: queue.Queue[JobRecord] = queue.Queue()
        closed = threading.Event()
        lock = threading.Lock()
        seen: dict[str, Any] = {"job": None, "sketches": {}}

        def publish() -> None:  # caller holds ``lock``
            if seen["job"] is not None:
                snapshots.put(assemble(seen["job"], seen["sketches"]))

        def on_job(documents: list[Any], changes: Any, read_time: Any) -> None:
            with lock:
                for document in documents:
                    if document.exists:
                        seen["job"] = document.to_dict()
                publish()

        def on_sketches(documents: list[Any], changes: Any, read_time: Any) -> None:
            with lock:
                seen["sketches"] = {d.id: (d.to_dict(), d.update_time) for d in documents}
                publish()

        watches = [
            self._ref(job_id).on_snapshot(on_job),
            self._ref(job_id).collection("sketches").on_snapshot(on_sketches),
        ]

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
            for watch in watches:
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
            found = [j for j in (self._read(job_id) for job_id in job_ids) if j is not None]
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
            # A running job is stored as queued: its sketches say it started.
            stored = {"queued" if s == "running" else s for s in statuses}
            query = query.where(filter=firestore.FieldFilter("status", "in", sorted(stored)))
        query = query.order_by("created_at", direction=firestore.Query.DESCENDING).limit(limit)
        listed = (self._listed(snapshot) for snapshot in query.stream())
        return [job for job in listed if job_matches(job, statuses=statuses)]

    def _listed(self, snapshot: Any) -> JobRecord:
        # The query already read the job's document: only a live job's sketches are read.
        return self._assembled(snapshot.id, snapshot.to_dict())

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
            jobs = [self._listed(s) for s in ordered.limit(scan + 1).stream()]
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
