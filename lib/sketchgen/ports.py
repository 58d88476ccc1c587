"""The ports: every outside system sits behind one of these small protocols.

Adapters translate their SDK's errors into :mod:`sketchgen.errors` at this edge.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

from sketchgen.jobs import (
    BatchRef,
    CallResult,
    ClaimResult,
    FinishResult,
    JobRecord,
    SketchState,
)
from sketchgen.schemas import ReferenceImage, Variation
from sketchgen.styles.owned import ReferenceDoc, StyleDoc

__all__ = [
    "BatchState",
    "BatchStatus",
    "BlobStore",
    "Clock",
    "EmbeddingTask",
    "Favourite",
    "FavouriteStore",
    "ImageDescriber",
    "ImageModel",
    "ImageRequest",
    "ImageResponse",
    "JobCursor",
    "JobPage",
    "JobStore",
    "Neighbour",
    "ReferenceIndex",
    "ReferencePart",
    "SketchTask",
    "StyleStore",
    "SyncImageModel",
    "TaskQueue",
    "TextEmbedder",
]


@dataclass(frozen=True, slots=True)
class ReferencePart:
    """A reference image sent to the model as an image part."""

    reference: ReferenceImage
    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class ImageRequest:
    """One sketch to draw. ``prompt`` is complete; the rest lets a local model draw without
    parsing it."""

    index: int
    prompt: str
    brief: str
    variation: Variation
    model: str
    aspect_ratio: str = "1:1"
    image_size: str = "1K"
    seed: int = 0
    references: tuple[ReferencePart, ...] = ()
    input_image: bytes | None = field(default=None, repr=False)  # refinement: sketch to redraw
    instruction: str | None = None  # refinement: what to change


@dataclass(frozen=True, slots=True)
class ImageResponse:
    data: bytes = field(repr=False)
    mime_type: str
    model_used: str
    finish_reason: str | None = None
    text: str | None = None


BatchState = Literal["pending", "running", "succeeded", "failed", "cancelled", "expired"]


@dataclass(frozen=True)
class BatchStatus:
    """Where a model-side batch (the Gemini Batch API) stands. ``results`` come in request
    order once it succeeded: an image, or the error that sketch ended with."""

    name: str
    state: BatchState
    results: tuple[ImageResponse | Exception, ...] | None = None

    @property
    def ended(self) -> bool:
        return self.state not in {"pending", "running"}


class SyncImageModel(Protocol):
    """What drawing one sketch calls: an adapter, or one wrapped in a quota gate."""

    def generate_image(self, request: ImageRequest) -> ImageResponse: ...


@runtime_checkable
class ImageModel(SyncImageModel, Protocol):
    """The image-model port: what the services and the library call. Raises
    :class:`sketchgen.errors.ModelError` subclasses, nothing else; never retries (retry
    lives in one place, :mod:`sketchgen.generate.retry`). Implementations derive from
    :class:`sketchgen.generate.base.ImageModelAdapter`, which supplies the defaults."""

    supports_batch: bool

    @property
    def name(self) -> str: ...

    def prepare(self) -> None: ...

    async def agenerate_image(self, request: ImageRequest) -> ImageResponse: ...

    def submit_batch(self, requests: Sequence[ImageRequest], *, display_name: str) -> str: ...

    def batch_status(self, name: str) -> BatchStatus: ...


# -- the service's ports ---------------------------------------------------------------------


class Clock(Protocol):
    """Time, as leases, deadlines, quota windows and the finaliser see it
    (:class:`sketchgen.clock.SystemClock`; tests advance a fake one)."""

    def now(self) -> datetime:
        """Wall time, timezone-aware UTC (what is stored and shared between instances)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (for waiting within one process)."""
        ...

    def sleep(self, seconds: float) -> None: ...


@dataclass(frozen=True, slots=True)
class SketchTask:
    """One queue message: draw sketch ``index`` of job ``job_id``."""

    job_id: str
    index: int
    priority: str = "interactive"


class TaskQueue(Protocol):
    def publish(self, tasks: Sequence[SketchTask]) -> None:
        """Enqueue every task or raise :class:`StorageError`; at-least-once delivery."""
        ...


class BlobStore(Protocol):
    """Job outputs under ``jobs/{job_id}/``. Keys are relative, '/'-separated, never '..'."""

    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    def get(self, key: str) -> bytes:
        """The blob's bytes, or :class:`NotFoundError`."""
        ...

    def exists(self, key: str) -> bool: ...

    def signed_url(self, key: str, *, expires_s: int) -> str | None:
        """A short-lived URL a browser can fetch, or None when the API must serve the blob."""
        ...

    def delete(self, key: str) -> None:
        """Remove the blob; a missing one is no error."""
        ...

    def delete_under(self, folder: str) -> int:
        """Remove every blob whose key starts with ``folder + "/"``; returns how many."""
        ...


@dataclass(frozen=True, slots=True)
class JobCursor:
    """Where a page of jobs ends: the last job's ``created_at`` and id (ties broken by id)."""

    created_at: datetime
    job_id: str


@dataclass(frozen=True, slots=True)
class JobPage:
    jobs: list[JobRecord]
    next_cursor: JobCursor | None


@dataclass(frozen=True, slots=True)
class Favourite:
    """A sketch its owner starred (issue 27): ``users/{uid}/favourites/{job_id}_{index}``."""

    owner_uid: str
    job_id: str
    index: int
    created_at: datetime


class FavouriteStore(Protocol):
    """Starred sketches, per user, newest first. Ownership of the job is the service's to
    check. Raises :class:`StorageError` when the backend fails."""

    def put_favourite(self, favourite: Favourite) -> None:
        """Star (again: the first time is kept)."""
        ...

    def delete_favourite(self, owner_uid: str, job_id: str, index: int) -> None: ...

    def list_favourites(
        self, owner_uid: str, *, limit: int, before: Favourite | None = None
    ) -> list[Favourite]:
        """Newest first, after ``before`` (the last of the previous page)."""
        ...

    def favourite_indices(self, owner_uid: str, job_id: str) -> set[int]: ...

    def delete_job_favourites(self, owner_uid: str, job_id: str) -> None: ...


class JobStore(Protocol):
    """Job documents, with the transactions the workers rely on.

    Every method that changes a job bumps ``updated_at``. Methods raise
    :class:`StorageError` when the backend fails, never an SDK error.
    """

    def create_job(self, job: JobRecord) -> tuple[JobRecord, bool]:
        """Store a new job; returns ``(job, created)``.

        If ``job.idempotency_key`` was already used by the same ``owner_uid``: with the same
        ``request_hash`` return ``(existing_job, False)``; with another, raise ConflictError.
        """
        ...

    def get_job(self, job_id: str) -> JobRecord | None: ...

    def get_sketch(self, job_id: str, index: int) -> SketchState | None:
        """Sketch ``index`` as :meth:`get_job` would show it (None: no such job or sketch)
        but without ``seq`` (its place among the job's ended sketches needs them all), where
        the store can read it for less: what a worker re-reads every second while the model
        draws, to notice a cancel."""
        ...

    def claim_sketch(
        self, job_id: str, index: int, *, worker: str, lease_s: float, now: datetime | None = None
    ) -> ClaimResult:
        """Atomically take sketch ``index``'s lease.

        pending, or running with an expired lease -> running, ``lease_owner=worker``,
        ``lease_expires_at=now+lease_s``, ``attempts+1``, job ``queued -> running``: CLAIMED.
        ok/failed/cancelled: ALREADY_ENDED. Running with a live lease: LEASED. No such job or
        index: MISSING. If the job has ``cancel_requested`` or its ``deadline`` has passed, a
        pending sketch is ended as ``cancelled`` (with a seq) and ALREADY_ENDED is returned.
        """
        ...

    def finish_sketch(
        self,
        job_id: str,
        index: int,
        *,
        worker: str,
        state: SketchState,
        now: datetime | None = None,
    ) -> FinishResult:
        """Record a terminal state (``ok`` or ``failed``) if ``worker`` still holds the lease
        (a cancel ends a running sketch and so takes the lease away).

        Accepted: the store sets ``seq = ++event_seq``, ``ended_at``, clears the lease and
        returns ``accepted=True``; ``finalize=True`` only for the call that ended the job's
        last sketch. Lease lost (another worker owns it, or it already ended): accepted=False.
        """
        ...

    def release_sketch(
        self, job_id: str, index: int, *, worker: str, error: str | None, refund: bool = False
    ) -> None:
        """Back to ``pending`` (lease cleared) if ``worker`` still holds it: after a transient
        failure (attempts and error kept), or with ``refund`` when the model was never called
        (no model slot came in time: the claim's attempt is given back, the error kept)."""
        ...

    def renew_lease(
        self, job_id: str, index: int, *, worker: str, lease_s: float, now: datetime | None = None
    ) -> bool:
        """The heartbeat of a worker holding sketch ``index``: if ``worker`` still holds it
        (running, ``lease_owner == worker``, even with the lease run out), set
        ``lease_expires_at = now + lease_s`` and return True. Otherwise (ended, cancelled,
        released, taken over by another worker, no such job or sketch) change nothing and
        return False: the worker must stop drawing and drop its result. One write on the
        sketch, every third of a lease (docs/decisions/0069)."""
        ...

    def count_call(self, job_id: str, index: int, *, worker: str) -> CallResult:
        """Count one more model call (a retry, a stricter re-ask, a guard redraw) for a sketch
        ``worker`` holds, before the call is sent: the call is charged from then on. Not held
        (cancelled, taken over): ``held=False``, nothing counted, no call may be made. (The
        claim counts the delivery's first call; a refunded release gives it back.)"""
        ...

    def set_batch(self, job_id: str, batch: BatchRef | None) -> None:
        """Record (or clear) the model-side batch the job's sketches wait on."""
        ...

    def cancel_job(
        self, job_id: str, now: datetime | None = None, *, running: bool = True
    ) -> FinishResult:
        """Set ``cancel_requested``; end every pending sketch, and with ``running`` (the
        default: a user's cancel) every running one too, as ``cancelled`` (each with a seq,
        its lease cleared). A running sketch's worker is not waited for: its later
        ``finish_sketch`` is refused (the sketch already ended), so its result is discarded.
        ``finalize=True`` if that ended the job's last sketch — with ``running`` always, unless
        the job had already ended (``accepted=False``). ``running=False`` (a deadline) leaves
        sketches in flight to finish; the last of them finalises."""
        ...

    def complete_job(self, job_id: str, *, metadata_path: str | None) -> JobRecord:
        """Set the final status (from the sketches) and ``metadata_path``. Idempotent."""
        ...

    def watch_job(self, job_id: str) -> AbstractContextManager[Iterator[JobRecord]]:
        """Snapshots of the job: the current one first, then one per change, until closed."""
        ...

    def list_jobs(
        self,
        *,
        owner_uid: str | None = None,
        style_id: str | None = None,
        job_ids: Sequence[str] | None = None,
        statuses: Sequence[str] | None = None,
        limit: int = 100,
    ) -> list[JobRecord]:
        """Newest first."""
        ...

    def find_idempotent(self, owner_uid: str, idempotency_key: str) -> JobRecord | None:
        """The job ``owner_uid`` created with ``idempotency_key``, if any (read before
        admission, so a retry of an accepted job is answered without a second charge)."""
        ...

    def delete_owner_jobs(self, owner_uid: str) -> list[str]:
        """Delete every job of ``owner_uid`` (with anything stored under its document) and
        their idempotency records; returns the deleted job ids (``DELETE /v1/me``)."""

    def page_jobs(
        self,
        owner_uid: str,
        *,
        limit: int,
        cursor: JobCursor | None = None,
        style_id: str | None = None,
        query: str | None = None,
    ) -> JobPage:
        """One page of the owner's jobs, newest first (``created_at``, then ``job_id``), after
        ``cursor``; ``style_id`` filters, ``query`` keeps jobs whose brief contains it
        (case-insensitive). ``next_cursor`` is None on the last page. A store may scan a
        bounded number of jobs per call for ``query`` and return fewer than ``limit`` with a
        cursor to go on from (Firestore has no substring search)."""
        ...

    def delete_job(self, job_id: str) -> bool:
        """Delete the job document (and whatever the store keeps under it); False if absent."""
        ...


# -- user styles (issue 16) ------------------------------------------------------------------

EmbeddingTask = Literal["document", "query"]


class TextEmbedder(Protocol):
    """Text → vector. ``model`` names the model and vector size: a stored vector records it,
    and only vectors of the current model are compared with a query."""

    @property
    def model(self) -> str: ...

    def embed(self, texts: Sequence[str], *, task: EmbeddingTask = "document") -> list[list[float]]:
        """One vector per text; raises :class:`sketchgen.errors.ModelError` subclasses."""
        ...


@dataclass(frozen=True, slots=True)
class Neighbour:
    sha256: str
    score: float  # cosine similarity, in [-1, 1]


class StyleStore(Protocol):
    """User styles (``styles/{id}``) and their references (``styles/{id}/references/{sha}``).
    Ownership is the service's to check: the store answers by id. Raises
    :class:`StorageError` when the backend fails."""

    def create_style(self, style: StyleDoc, *, limit: int | None = None) -> None:
        """Store a new style; with ``limit``, refused (:class:`LimitError`) when its
        owner already has that many, checked in the same transaction as the write."""
        ...

    def get_style(self, style_id: str) -> StyleDoc | None: ...

    def list_styles(self, owner_uid: str) -> list[StyleDoc]:
        """The owner's styles, oldest first."""
        ...

    def put_style(self, style: StyleDoc) -> None:
        """Replace an existing style document."""
        ...

    def delete_style(self, style_id: str) -> None:
        """The style and every reference document under it."""
        ...

    def list_references(self, style_id: str) -> list[ReferenceDoc]: ...

    def get_reference(self, style_id: str, sha256: str) -> ReferenceDoc | None: ...

    def put_reference(self, style_id: str, reference: ReferenceDoc) -> None:
        """Replace (or store) a reference as it is, without a limit (edits, re-embedding)."""
        ...

    def add_reference(self, style_id: str, reference: ReferenceDoc, *, limit: int) -> bool:
        """In one transaction: store a new reference and bump the style's ``revision``, unless
        it is there already (False) or the style has ``limit`` references
        (:class:`LimitError`). :class:`NotFoundError` if the style is gone."""
        ...

    def delete_reference(self, style_id: str, sha256: str) -> None: ...

    def references_not_embedded_by(
        self, model: str, *, limit: int
    ) -> list[tuple[str, ReferenceDoc]]:
        """``(style_id, reference)`` whose vector is missing or from another model."""
        ...


class ImageDescriber(Protocol):
    """A reference image in words (uploads without a description). Raises
    :class:`sketchgen.errors.ModelError` subclasses. ``model`` prices the call."""

    model: str

    def describe(self, png: bytes) -> str: ...


class ReferenceIndex(Protocol):
    """The nearest usable references of one style to a query vector: only the style's own,
    never a ``do_not_use`` one, only vectors made by ``model`` — filtered before ranking."""

    def nearest(
        self, style_id: str, query: Sequence[float], *, model: str, top_k: int
    ) -> list[Neighbour]: ...
