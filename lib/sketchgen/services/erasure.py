"""``DELETE /v1/me``: a user's data, all of it, in one call.

Deleted: the user's jobs (every document under each, and their idempotency keys), the jobs'
files (sketches, ``metadata.json``, refinement inputs), the user's styles with their
references and reference images, and the usage history (unsettled job charges).

Kept, on purpose, until the UTC day ends: today's spend counters (images and calls used,
cost, uploads). A deletion must not hand back the day's budget — delete, sign in again,
spend the day twice. The account document (``accounts/{uid}``: the plan and any limits an
operator set) is the operator's, not the user's, and stays for the same reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sketchgen.layout import job_prefix
from sketchgen.logs import get_logger, log_context
from sketchgen.ports import BlobStore, FavouriteStore, JobStore
from sketchgen.services.spending import SpendControl
from sketchgen.services.styles import StyleService

__all__ = ["UserErasure"]

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class UserErasure:
    jobs: JobStore
    blobs: BlobStore
    catalog: StyleService
    favourites: FavouriteStore
    spend: SpendControl | None = None

    def delete_user_data(self, uid: str) -> dict[str, Any]:
        """Delete what ``uid`` owns; returns how much of each. Safe to call again (a retry
        after a failure part-way finds less and deletes the rest)."""
        # Documents first: a worker still drawing for a deleted job finds it missing.
        job_ids = self.jobs.delete_owner_jobs(uid)
        files = sum(self.blobs.delete_under(job_prefix(job_id)) for job_id in job_ids)
        for job_id in job_ids:
            self.favourites.delete_job_favourites(uid, job_id)
        styles = self.catalog.delete_owner_styles(uid)
        if self.spend is not None:
            self.spend.ledger.forget(uid)
        deleted = {"jobs": len(job_ids), "job_files": files, "styles": len(styles)}
        with log_context(**deleted):
            log.info("deleted a user's data")  # counts only: the uid is not logged
        return {"deleted": deleted}
