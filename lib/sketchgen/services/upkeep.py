"""Upkeep: the scheduled sweep that leaves nothing stuck.

Safe to repeat and to run beside the workers: every write it causes goes through the same
claims and finalising the workers use, so a duplicate is harmless.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sketchgen.clock import SYSTEM_CLOCK
from sketchgen.errors import SketchgenError
from sketchgen.logs import get_logger, log_context
from sketchgen.ports import Clock, JobStore, SketchTask, TaskQueue
from sketchgen.services.stored import StoredJobs

__all__ = ["Upkeep"]

log = get_logger(__name__)


class Upkeep:
    def __init__(
        self,
        *,
        jobs: JobStore,
        queue: TaskQueue,
        stored: StoredJobs,
        reembed: Callable[[], int] | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.jobs = jobs
        self.clock = clock
        self.queue = queue
        self.stored = stored
        # User styles' references whose vector is missing or from another embedding model.
        self.reembed = reembed

    def sweep(self, *, stale_after: timedelta = timedelta(minutes=10)) -> dict[str, int]:
        """Nothing stuck: run on a schedule, safe to repeat and to run beside the workers.

        A job whose sketches have all ended is finalised; a job past its deadline has its
        unstarted sketches cancelled; a sketch whose lease expired (its worker died and the
        message is gone) or that has waited ``stale_after`` with no progress on the job is
        queued again (claims make a duplicate harmless). Jobs waiting on a Batch API batch
        are left to :meth:`BatchRegeneration.collect_batches
        <sketchgen.services.batch.BatchRegeneration.collect_batches>`.
        """
        now = self.clock.now()
        counts = {"finalized": 0, "deadline_cancelled": 0, "requeued": 0}
        for job in self.jobs.list_jobs(statuses=("queued", "running"), limit=1000):
            with log_context(job_id=job.job_id):
                if job.deadline is not None and now >= job.deadline and not job.all_ended:
                    # Sketches started in time may finish: only the unstarted ones end.
                    result = self.jobs.cancel_job(job.job_id, running=False)
                    counts["deadline_cancelled"] += result.accepted
                    job = result.job or job
                if job.all_ended:
                    self.stored.finalize_job(job.job_id)
                    counts["finalized"] += 1
                    continue
                if job.batch is not None:
                    continue
                stale = now - job.updated_at > stale_after
                lost = [
                    int(i)
                    for i, s in job.sketches.items()
                    if (s.status == "running" and s.lease_expires_at and s.lease_expires_at <= now)
                    or (s.status == "pending" and stale)
                ]
                if lost:
                    log.warning("re-queueing sketches %s", sorted(lost))
                    self.queue.publish(
                        [SketchTask(job.job_id, i, job.priority) for i in sorted(lost)]
                    )
                    counts["requeued"] += len(lost)
        if self.reembed is not None:
            try:
                if reembedded := self.reembed():  # reported only when there were some
                    counts["reembedded"] = reembedded
            except SketchgenError as error:  # the next sweep tries again
                log.warning("re-embedding references failed: %s", error)
        return counts
