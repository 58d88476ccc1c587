"""Batch regeneration: re-run saved jobs as new low-priority jobs, optionally through the
model's Batch API (half price, results within a day), and store the batches' results.

See docs/decisions/0005: the job document is the only state; a batch that is refused, fails
or expires sends its jobs to the ordinary queue.
"""

from __future__ import annotations

import functools
import uuid
from datetime import timedelta

from sketchgen.errors import (
    ConfigError,
    InputError,
    LimitError,
    ModelError,
    NotEntitledError,
    NotFoundError,
    UnknownStyleError,
)
from sketchgen.generate.pipeline import settle_sketch
from sketchgen.jobs import TERMINAL_JOB, BatchRef, Claim, JobRecord, utcnow
from sketchgen.logs import get_logger, log_context
from sketchgen.ports import (
    BatchStatus,
    ImageModel,
    ImageRequest,
    ImageResponse,
    JobStore,
    SketchTask,
    SyncImageModel,
    TaskQueue,
)
from sketchgen.quota import GatedModel, QuotaGate
from sketchgen.services.config import ServiceConfig
from sketchgen.services.lease import LOST, TIMED_OUT, LeaseKeeper
from sketchgen.services.stored import SketchRecorder, StoredJobs
from sketchgen.services.submission import JobService

__all__ = ["BatchRegeneration"]

log = get_logger(__name__)


class BatchRegeneration:
    def __init__(
        self,
        *,
        jobs: JobStore,
        queue: TaskQueue,
        model: ImageModel,
        submission: JobService,
        stored: StoredJobs,
        recorder: SketchRecorder,
        config: ServiceConfig | None = None,
        gate: QuotaGate | None = None,
    ) -> None:
        self.jobs = jobs
        self.queue = queue
        self.model = model
        # A regeneration is a job submitted like any other (planned, stored, linked).
        self.submission = submission
        self.stored = stored
        self.recorder = recorder
        self.config = config or ServiceConfig()
        self.gate = gate
        # The lease is short and renewed while a stricter re-ask runs (docs/decisions/0069).
        self.lease = LeaseKeeper(jobs=jobs, recorder=recorder, config=self.config)

    def regenerate(
        self,
        *,
        style_id: str | None = None,
        job_ids: list[str] | None = None,
        batch: bool = False,
        run_id: str | None = None,
        limit: int = 100,
    ) -> list[JobRecord]:
        """Re-run saved jobs as new low-priority jobs linked to their originals.

        By style, only original jobs are taken (not earlier regenerations: a nightly run
        would otherwise double the chain every night). ``run_id`` makes a run idempotent:
        the same run delivered twice makes each job once. With ``batch`` the sketches go to
        the model's Batch API (half price, results within a day) instead of the queue.
        """
        if not style_id and not job_ids:
            raise InputError("give a style_id or job_ids to regenerate", field="style_id")
        if batch and not self.model.supports_batch:
            raise ConfigError(f"the {self.model.name} model has no batch API", field="batch")
        run_id = run_id or uuid.uuid4().hex[:12]
        originals = [
            job
            for job in self.jobs.list_jobs(style_id=style_id, job_ids=job_ids, limit=limit)
            if job.status in TERMINAL_JOB and (job_ids or job.regenerated_from is None)
        ]
        made, fresh = [], []
        for original in originals:
            try:
                job, created = self.submission.submit_job(
                    original.owner_uid,
                    original.request,
                    idempotency_key=f"regenerate:{run_id}:{original.job_id}",
                    regenerated_from=original.job_id,
                    priority="batch",
                    batch=BatchRef(submitted_at=utcnow()) if batch else None,
                )
            except (LimitError, NotEntitledError) as refused:
                # The owner's budget or plan (docs/decisions/0012): this job waits for a
                # later run; the others go ahead.
                with log_context(job_id=original.job_id):
                    log.warning("not regenerated for its owner: %s", refused)
                continue
            except (NotFoundError, UnknownStyleError) as error:
                # Its style was deleted (a user's own): nothing to regenerate it in. The rest
                # of the run goes on.
                log.warning("not regenerating %s: %s", original.job_id, error)
                continue
            made.append(job)
            if created and batch:
                fresh.append(job)
        if fresh:
            self._submit_batches(fresh, run_id)
        return made

    def _submit_batches(self, jobs: list[JobRecord], run_id: str) -> None:
        """One model-side batch per model; if the model refuses it, the queue takes over."""
        by_model: dict[str, list[JobRecord]] = {}
        for job in jobs:
            by_model.setdefault(job.plan.model_id, []).append(job)
        for group in by_model.values():
            requests: list[ImageRequest] = []
            refs: list[BatchRef] = []
            for job in group:
                plan = self.stored.job_plan(job)
                images = self.stored.images(plan)
                refs.append(BatchRef(first=len(requests), submitted_at=utcnow()))
                requests.extend(plan.request(int(i), images) for i in sorted(job.sketches, key=int))
            try:
                name = self.model.submit_batch(requests, display_name=f"sketchgen-{run_id}")
            except ModelError as error:
                log.warning("batch refused (%s); queueing %d jobs instead", error, len(group))
                for job in group:
                    self._requeue(job)
                continue
            for job, ref in zip(group, refs, strict=True):
                self.jobs.set_batch(job.job_id, ref.model_copy(update={"name": name}))
            log.info("batch %s: %d sketches of %d jobs", name, len(requests), len(group))

    def collect_batches(self, *, stale_after: timedelta = timedelta(minutes=15)) -> dict[str, int]:
        """Store the results of model-side batches that have ended; returns counts.

        Safe to run at any time and more than once (each sketch is claimed before it is
        stored). A batch that failed or expired, and a job whose batch was never accepted
        (a crash between creating the job and submitting), go to the queue instead.
        """
        counts = {"batches_waiting": 0, "jobs_collected": 0, "jobs_requeued": 0}
        groups: dict[str, list[JobRecord]] = {}
        for job in self.jobs.list_jobs(statuses=("queued", "running"), limit=1000):
            if job.batch is None:
                continue
            if job.batch.name is not None:
                groups.setdefault(job.batch.name, []).append(job)
            elif utcnow() - job.batch.submitted_at > stale_after:
                self._requeue(job)
                counts["jobs_requeued"] += 1
        for name, waiting in groups.items():
            status = self.model.batch_status(name)
            if not status.ended:
                counts["batches_waiting"] += 1
                continue
            for job in waiting:
                if status.state == "succeeded" and status.results is not None:
                    self._collect(job, status)
                    counts["jobs_collected"] += 1
                else:
                    log.warning(
                        "batch %s ended %s; queueing job %s", name, status.state, job.job_id
                    )
                    self._requeue(job)
                    counts["jobs_requeued"] += 1
        return counts

    def _collect(self, job: JobRecord, status: BatchStatus) -> None:
        assert job.batch is not None and status.results is not None
        plan = self.stored.job_plan(job)
        with log_context(job_id=job.job_id):
            for index in sorted(int(i) for i in job.sketches):
                position = job.batch.first + index
                result: ImageResponse | Exception = (
                    status.results[position]
                    if position < len(status.results)
                    else ModelError(f"batch {status.name} has no answer for this sketch")
                )
                claim = self.jobs.claim_sketch(
                    job.job_id, index, worker=self.recorder.worker_id, lease_s=self.config.lease_s
                )
                if claim.claim is not Claim.CLAIMED or claim.job is None:
                    continue  # cancelled, or stored by an earlier collection
                # A missing or off-style answer gets its one stricter request here, directly
                # (through the quota gate when there is one), as a worker would make it.
                model: SyncImageModel = self.model
                if self.gate is not None:
                    wait_s = self.config.quota_wait_s
                    model = GatedModel(self.model, self.gate, job.owner_uid, wait_s)
                settle = functools.partial(
                    settle_sketch,
                    plan.request(index),
                    result,
                    job.job_id,
                    model=model,
                    policy=self.config.retry,
                )
                # hold() returns before the loop moves on: the lambda sees this sketch's call.
                outcome = self.lease.hold(job.job_id, index, lambda _stop: settle())  # noqa: B023
                if outcome is LOST:  # cancelled, or taken over while it was settled
                    continue
                if outcome is TIMED_OUT:  # hung, and given back: the ordinary queue draws it
                    self.queue.publish([SketchTask(job.job_id, index, "batch")])
                    continue
                if not self.recorder.record(claim.job, index, claim.attempt, outcome):
                    self.queue.publish([SketchTask(job.job_id, index, "batch")])
            self.jobs.set_batch(job.job_id, None)

    def _requeue(self, job: JobRecord) -> None:
        """The job leaves its batch: its pending sketches go to the ordinary queue."""
        self.jobs.set_batch(job.job_id, None)
        pending = [int(i) for i, s in job.sketches.items() if s.status == "pending"]
        self.queue.publish([SketchTask(job.job_id, i, "batch") for i in sorted(pending)])
