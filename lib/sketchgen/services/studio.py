"""A designer's studio (issue 27): the history of a user's jobs, favourites, exports,
thumbnails, variations and deleting a job. Every call is scoped to the owner: another user's
job is reported exactly like a missing one (``JobService.get_job``).

Exports and thumbnails are made on first request and kept in the blob store under the job's
own prefix (``layout.export_key`` / ``layout.thumbnail_key``), so a job's deletion takes them
with it and the worker's hot path is untouched (docs/decisions/0034).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sketchgen.errors import InputError, NotFoundError
from sketchgen.exports import ExportFormat, export_name, export_sketch, media_type
from sketchgen.jobs import JobRecord, utcnow
from sketchgen.layout import THUMBNAIL_PX, export_key, job_prefix, sketch_key, thumbnail_key
from sketchgen.logs import get_logger, log_context
from sketchgen.ports import BlobStore, Favourite, FavouriteStore, JobCursor, JobPage, JobStore
from sketchgen.services.submission import JobService

__all__ = ["FavouritePage", "StudioService", "decode_cursor", "encode_cursor"]

log = get_logger(__name__)

MAX_PAGE = 100


def encode_cursor(created_at: datetime, key: str) -> str:
    """Opaque to clients: ``created_at|key`` in URL-safe base64."""
    raw = f"{created_at.isoformat()}|{key}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(value: str) -> tuple[datetime, str]:
    bad = InputError("cursor is not one this API gave out", field="cursor")
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        stamp, key = raw.split("|", 1)
        created_at = datetime.fromisoformat(stamp)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise bad from None
    if created_at.tzinfo is None or not key:
        raise bad
    return created_at, key


@dataclass(frozen=True, slots=True)
class FavouritePage:
    favourites: list[tuple[Favourite, JobRecord]]
    next_cursor: str | None


class StudioService:
    def __init__(
        self,
        *,
        jobs: JobStore,
        blobs: BlobStore,
        favourites: FavouriteStore,
        submission: JobService,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.jobs = jobs
        self.blobs = blobs
        self.favourites = favourites
        self.submission = submission
        self.now = now

    # -- history ------------------------------------------------------------------------

    def list_jobs(
        self,
        owner_uid: str,
        *,
        limit: int = 20,
        cursor: str | None = None,
        style_id: str | None = None,
        query: str | None = None,
    ) -> tuple[JobPage, str | None]:
        """A page of the owner's jobs, newest first, and the next page's opaque cursor."""
        if not 1 <= limit <= MAX_PAGE:
            raise InputError(f"limit must be between 1 and {MAX_PAGE}", field="limit")
        after = None
        if cursor:
            created_at, job_id = decode_cursor(cursor)
            after = JobCursor(created_at=created_at, job_id=job_id)
        page = self.jobs.page_jobs(
            owner_uid, limit=limit, cursor=after, style_id=style_id, query=query or None
        )
        following = page.next_cursor
        return page, (encode_cursor(following.created_at, following.job_id) if following else None)

    def favourite_indices(self, owner_uid: str, job_id: str) -> set[int]:
        return self.favourites.favourite_indices(owner_uid, job_id)

    # -- favourites ---------------------------------------------------------------------

    def _finished_sketch(self, owner_uid: str, job_id: str, index: int) -> JobRecord:
        job = self.submission.get_job(owner_uid, job_id)
        state = job.sketches.get(str(index))
        if state is None or state.status != "ok":
            raise NotFoundError(f"no finished sketch {index} in job {job_id!r}")
        return job

    def favourite(self, owner_uid: str, job_id: str, index: int) -> None:
        self._finished_sketch(owner_uid, job_id, index)
        self.favourites.put_favourite(Favourite(owner_uid, job_id, index, self.now()))

    def unfavourite(self, owner_uid: str, job_id: str, index: int) -> None:
        self.submission.get_job(owner_uid, job_id)
        self.favourites.delete_favourite(owner_uid, job_id, index)

    def list_favourites(
        self, owner_uid: str, *, limit: int = 50, cursor: str | None = None
    ) -> FavouritePage:
        """The owner's starred sketches, newest star first, each with its job. A star whose
        job has gone (deleted, expired) is dropped from the list and the store."""
        if not 1 <= limit <= MAX_PAGE:
            raise InputError(f"limit must be between 1 and {MAX_PAGE}", field="limit")
        before = None
        if cursor:
            created_at, key = decode_cursor(cursor)
            job_id, _, index = key.rpartition("#")
            if not job_id or not index.isdigit():
                raise InputError("cursor is not one this API gave out", field="cursor")
            before = Favourite(owner_uid, job_id, int(index), created_at)
        stars = self.favourites.list_favourites(owner_uid, limit=limit, before=before)
        found: list[tuple[Favourite, JobRecord]] = []
        for star in stars:
            job = self.jobs.get_job(star.job_id)
            if job is None or job.owner_uid != owner_uid:
                self.favourites.delete_favourite(owner_uid, star.job_id, star.index)
                continue
            found.append((star, job))
        last = stars[-1] if len(stars) == limit else None
        following = encode_cursor(last.created_at, f"{last.job_id}#{last.index}") if last else None
        return FavouritePage(found, following)

    # -- files --------------------------------------------------------------------------

    def export(
        self, owner_uid: str, job_id: str, index: int, fmt: ExportFormat
    ) -> tuple[bytes, str, str]:
        """``(data, media type, file name)``; made once, then read from the blob store."""
        self._finished_sketch(owner_uid, job_id, index)
        name = export_name(index, fmt)
        key = export_key(job_id, name)
        try:
            data = self.blobs.get(key)
        except NotFoundError:
            data = export_sketch(self.blobs.get(sketch_key(job_id, index)), fmt)
            self.blobs.put(key, data, media_type(fmt))
        return data, media_type(fmt), f"{job_id}_{name}"

    def thumbnail(self, owner_uid: str, job_id: str, index: int) -> bytes:
        """A small PNG of the sketch, made on its first request (not by the worker, which
        another change is rewriting: docs/decisions/0034) and kept."""
        self._finished_sketch(owner_uid, job_id, index)
        key = thumbnail_key(job_id, index)
        try:
            return self.blobs.get(key)
        except NotFoundError:
            data = make_thumbnail(self.blobs.get(sketch_key(job_id, index)))
            self.blobs.put(key, data, "image/png")
            return data

    # -- deleting -----------------------------------------------------------------------

    def delete_job(self, owner_uid: str, job_id: str) -> None:
        """The job, its sketches' documents, its files (sketches, metadata, input, exports,
        thumbnails) and its stars. A job still running is cancelled first, so no sketch is
        drawn into a folder that is gone."""
        job = self.submission.get_job(owner_uid, job_id)
        if not job.is_final:
            self.submission.cancel_job(owner_uid, job_id)
        # Files first: a failure part-way leaves a job that can be deleted again, never a
        # job-less folder nobody can reach.
        removed = self.blobs.delete_under(job_prefix(job_id))
        self.favourites.delete_job_favourites(owner_uid, job_id)
        self.jobs.delete_job(job_id)
        with log_context(job_id=job_id):
            log.info("job deleted with %d files", removed)

    # -- variations ---------------------------------------------------------------------

    def vary(
        self,
        owner_uid: str,
        job_id: str,
        index: int,
        *,
        num_images: int,
        idempotency_key: str | None = None,
    ) -> tuple[JobRecord, bool]:
        return self.submission.vary_sketch(
            owner_uid, job_id, index, num_images=num_images, idempotency_key=idempotency_key
        )


def make_thumbnail(png: bytes) -> bytes:
    import io

    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        small = image.convert("L")
    small.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    small.save(out, "PNG", optimize=True)
    return out.getvalue()
