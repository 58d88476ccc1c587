"""Paging a user's jobs (``JobStore.page_jobs``, issue 27): the order, the cursor test and
the brief search every store shares, so they page identically."""

from __future__ import annotations

from collections.abc import Sequence

from sketchgen.jobs import JobRecord
from sketchgen.ports import JobCursor, JobPage

__all__ = [
    "QUERY_SCAN_LIMIT",
    "brief_matches",
    "cursor_of",
    "is_after",
    "newest_first",
    "page_of",
]

# A brief search scans at most this many jobs per page request before answering with what it
# found and a cursor to go on from: a search never reads a user's whole history at once.
QUERY_SCAN_LIMIT = 500


def newest_first(job: JobRecord) -> tuple[str, str]:
    """Sort key, used reversed: newest ``created_at`` first, then the larger id."""
    return job.created_at.isoformat(), job.job_id


def is_after(job: JobRecord, cursor: JobCursor | None) -> bool:
    """Whether ``job`` comes after ``cursor`` in newest-first order."""
    if cursor is None:
        return True
    return (job.created_at, job.job_id) < (cursor.created_at, cursor.job_id)


def brief_matches(job: JobRecord, query: str | None) -> bool:
    return not query or query.casefold() in job.request.brief.casefold()


def cursor_of(job: JobRecord) -> JobCursor:
    return JobCursor(created_at=job.created_at, job_id=job.job_id)


def page_of(scanned: Sequence[JobRecord], *, limit: int, query: str | None, more: bool) -> JobPage:
    """The page from ``scanned`` (jobs past the cursor, newest first): at most ``limit`` that
    match ``query``. ``more``: the store has jobs past the last one scanned. The cursor is
    None exactly when nothing is left to read."""
    found: list[JobRecord] = []
    for position, job in enumerate(scanned):
        if brief_matches(job, query):
            found.append(job)
            if len(found) == limit:
                left = more or position < len(scanned) - 1
                return JobPage(found, cursor_of(job) if left else None)
    return JobPage(found, cursor_of(scanned[-1]) if more and scanned else None)
