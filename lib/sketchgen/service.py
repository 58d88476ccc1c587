"""The service: submit, run, watch and cancel jobs over the ports.

Handlers take their dependencies as constructor arguments (see :mod:`sketchgen.bootstrap`);
the HTTP layer and the cloud functions are thin wrappers around these methods.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from sketchgen.errors import ConfigError, InputError, ModelError, NotFoundError
from sketchgen.generate.base import ImageModelAdapter
from sketchgen.generate.config import GenerationConfig
from sketchgen.generate.models import DEFAULT_MODEL, resolve_model
from sketchgen.generate.pipeline import (
    JobPlan,
    Refinement,
    SketchOutcome,
    draw_sketch,
    plan_job,
    settle_sketch,
)
from sketchgen.generate.retry import RetryPolicy
from sketchgen.jobs import (
    TERMINAL_JOB,
    BatchRef,
    Claim,
    ClaimResult,
    JobRecord,
    JobRequest,
    PlanRecord,
    ReferenceEntry,
    SketchState,
    utcnow,
)
from sketchgen.layout import METADATA_FILE, input_key, metadata_key, sketch_file, sketch_key
from sketchgen.logs import get_logger, log_context
from sketchgen.metadata import JobMetadata, ParentRef, SketchRecord, new_job_id
from sketchgen.ports import (
    BatchStatus,
    BlobStore,
    ImageRequest,
    ImageResponse,
    JobStore,
    ReferencePart,
    SketchTask,
    SyncImageModel,
    TaskQueue,
)
from sketchgen.prompt import PromptCompiler
from sketchgen.quota import GatedModel, QuotaGate
from sketchgen.references import ImageRetriever
from sketchgen.schemas import (
    MAX_INSTRUCTION_CHARS,
    ReferenceImage,
    RetrievalResult,
    ScoredReference,
    clean_text,
)
from sketchgen.styles import StyleRegistry

__all__ = ["ServiceConfig", "SketchService", "input_key", "metadata_key", "sketch_key"]

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    lease_s: float = 300.0
    # A delivery that finds the sketch leased waits (up to this long) for the lease to end
    # rather than nacking at once: queues redeliver faster than a dead worker's lease runs
    # out, and every nack would spend one of the message's few delivery attempts.
    lease_wait_s: float = 330.0
    lease_poll_s: float = 1.0
    max_deliveries: int = 5
    retention: timedelta = timedelta(days=30)
    # In one delivery a transient error gets one quick retry; beyond that the queue's own
    # backoff (Pub/Sub retry policy) spaces the attempts out without holding a worker.
    retry: RetryPolicy = field(
        default_factory=lambda: RetryPolicy(max_attempts=2, initial_delay_s=1.0, max_delay_s=10.0)
    )
    # With a quota gate, how long a delivery waits for a model slot before it goes back to
    # the queue as a fresh message (waiting for quota is not a failed delivery).
    quota_wait_s: float = 60.0
    # What a request that names no model gets (GEMINI_MODEL, through the bootstrap).
    default_model: str = DEFAULT_MODEL


class SketchService:
    def __init__(
        self,
        *,
        jobs: JobStore,
        blobs: BlobStore,
        queue: TaskQueue,
        model: ImageModelAdapter,
        styles: StyleRegistry,
        retriever: ImageRetriever | None = None,
        config: ServiceConfig | None = None,
        gate: QuotaGate | None = None,
    ) -> None:
        self.jobs = jobs
        self.blobs = blobs
        self.queue = queue
        self.model = model
        self.styles = styles
        self.retriever = retriever or ImageRetriever()
        self.config = config or ServiceConfig()
        self.gate = gate
        self.worker_id = f"worker-{uuid.uuid4().hex[:12]}"

    # -- submitting ------------------------------------------------------------------------

    def submit_job(
        self,
        owner_uid: str,
        request: JobRequest,
        *,
        idempotency_key: str | None = None,
        refinement: Refinement | None = None,
        regenerated_from: str | None = None,
        priority: str = "interactive",
        batch: BatchRef | None = None,
        deadline_s: float | None = None,
    ) -> tuple[JobRecord, bool]:
        """Plan the job, store it, queue one task per sketch. Returns ``(job, created)``.

        With ``batch`` nothing is queued: the sketches wait on a model-side batch instead
        (:meth:`regenerate` submits it, :meth:`collect_batches` stores its results).
        """
        style = self.styles.get_style(request.style_id)
        prompt_spec = PromptCompiler().compile(request.brief, style)
        config = GenerationConfig(
            num_images=request.num_images,
            image_size=request.image_size,
            aspect_ratio=request.aspect_ratio,
            seed=request.seed,
            allow_text=request.allow_text,
            model_name=request.model or self.config.default_model,
        )
        retrieval = self.retriever.retrieve(prompt_spec, style, top_k=3)
        job_id = new_job_id()
        plan = plan_job(
            job_id=job_id,
            prompt_spec=prompt_spec,
            retrieval=retrieval,
            config=config,
            model=self.model,
            refinement=refinement,
        )
        if refinement is not None:
            self.blobs.put(input_key(job_id), refinement.image, "image/png")
        record = JobRecord.new(
            job_id=job_id,
            owner_uid=owner_uid,
            request=request,
            plan=self._plan_record(plan),
            retention=self.config.retention,
            idempotency_key=idempotency_key,
            parent=plan.parent,
            regenerated_from=regenerated_from,
            priority="batch" if priority == "batch" else "interactive",
            batch=batch,
        )
        if deadline_s is not None:
            # Sketches not started by then are cancelled, not run (checked at every claim).
            record = record.model_copy(
                update={"deadline": record.created_at + timedelta(seconds=deadline_s)}
            )
        job, created = self.jobs.create_job(record)
        if created and batch is None:
            with log_context(job_id=job.job_id):
                self.queue.publish(
                    [SketchTask(job.job_id, i, job.priority) for i in range(config.num_images)]
                )
                log.info("job queued with %d sketches", config.num_images)
        return job, created

    def _plan_record(self, plan: JobPlan) -> PlanRecord:
        return PlanRecord(
            seed=plan.seed,
            model_requested=plan.config.model_name,
            model_id=plan.model_id,
            adapter=plan.adapter,
            prompt_spec=plan.prompt_spec,
            variations=plan.variations,
            references=tuple(
                ReferenceEntry(
                    path="/".join(Path(item.reference.path).parts[-3:]),
                    sha256=item.reference.sha256,
                    score=item.score,
                )
                for item in plan.retrieval.items
            ),
        )

    # -- reading ---------------------------------------------------------------------------

    def get_job(self, owner_uid: str, job_id: str) -> JobRecord:
        """The job, if it exists and belongs to ``owner_uid``; otherwise NotFoundError.

        Another user's job is reported exactly like a missing one, so ids cannot be probed.
        """
        job = self.jobs.get_job(job_id)
        if job is None or job.owner_uid != owner_uid:
            raise NotFoundError(f"no job {job_id!r}")
        return job

    def cancel_job(self, owner_uid: str, job_id: str) -> JobRecord:
        self.get_job(owner_uid, job_id)
        result = self.jobs.cancel_job(job_id)
        if result.finalize:
            return self.finalize_job(job_id)
        return result.job or self.get_job(owner_uid, job_id)

    def refine_sketch(
        self,
        owner_uid: str,
        job_id: str,
        index: int,
        instruction: str,
        *,
        num_images: int = 1,
        idempotency_key: str | None = None,
    ) -> tuple[JobRecord, bool]:
        """A new job that redraws sketch ``index`` of ``job_id`` as instructed."""
        parent = self.get_job(owner_uid, job_id)
        instruction = clean_text(instruction, field="instruction", max_chars=MAX_INSTRUCTION_CHARS)
        state = parent.sketches.get(str(index))
        if state is None or state.status != "ok":
            made = [int(i) for i, s in parent.sketches.items() if s.status == "ok"]
            raise InputError(
                f"job {job_id} has no finished sketch {index}", field="index", allowed=made
            )
        refinement = Refinement(
            parent=ParentRef(job_id=job_id, index=index, instruction=instruction),
            image=self.blobs.get(sketch_key(job_id, index)),
            variation=parent.plan.variations[index],
        )
        request = parent.request.model_copy(update={"num_images": num_images})
        return self.submit_job(
            owner_uid, request, idempotency_key=idempotency_key, refinement=refinement
        )

    def read_blob(self, owner_uid: str, job_id: str, name: str) -> bytes:
        job = self.get_job(owner_uid, job_id)
        if name == METADATA_FILE and job.metadata_path:
            return self.blobs.get(metadata_key(job_id))
        for index, state in job.sketches.items():
            if name == sketch_file(int(index)) and state.status == "ok":
                return self.blobs.get(sketch_key(job_id, int(index)))
        raise NotFoundError(f"no {name!r} in job {job_id!r}")

    # -- the worker ------------------------------------------------------------------------

    def run_sketch(self, task: SketchTask) -> bool:
        """Make one sketch. True acknowledges the message; False has it redelivered."""
        with log_context(job_id=task.job_id, sketch=task.index):
            claim = self._claim_waiting_out_leases(task)
            if claim.claim is Claim.MISSING:
                log.warning("dropping a task for a job or sketch that does not exist")
                return True
            if claim.claim is Claim.LEASED:
                return False  # still held after waiting: let the queue try again later
            job = claim.job
            assert job is not None
            if claim.claim is Claim.ALREADY_ENDED:
                if job.all_ended and not job.is_final:
                    self.finalize_job(job.job_id)  # the finaliser died before finishing
                return True
            return self._draw_claimed(job, task.index, claim.attempt)

    def fail_undeliverable(self, task: SketchTask, deliveries: int | None) -> bool:
        """A task Pub/Sub gave up on (its dead-letter topic): the sketch ends ``failed`` with
        the reason, instead of waiting for a sweep that would only queue it again.
        True acknowledges the dead letter; False (a live worker still holds it) retries."""
        with log_context(job_id=task.job_id, sketch=task.index):
            claim = self.jobs.claim_sketch(
                task.job_id, task.index, worker=self.worker_id, lease_s=self.config.lease_s
            )
            if claim.claim is Claim.LEASED:
                return False
            job = claim.job
            if claim.claim is Claim.MISSING or job is None:
                return True
            if claim.claim is Claim.ALREADY_ENDED:
                if job.all_ended and not job.is_final:
                    self.finalize_job(job.job_id)
                return True
            tries = f"{deliveries} deliveries" if deliveries else "every delivery"
            log.error("dead letter: the worker failed %s of this sketch", tries)
            state = SketchState(
                status="failed",
                error=f"undeliverable: the worker failed {tries}; see the worker's logs",
                finish_reason="UNDELIVERABLE",
                attempts=max(0, claim.attempt - 1),  # this claim made no model call
            )
            result = self.jobs.finish_sketch(
                job.job_id, task.index, worker=self.worker_id, state=state
            )
            if result.accepted and result.finalize:
                self.finalize_job(job.job_id)
            return True

    def _claim_waiting_out_leases(self, task: SketchTask) -> ClaimResult:
        """Claim, and while another worker holds the lease, wait for it to end or expire.

        A live holder finishes (this delivery then sees ALREADY_ENDED and acks); a dead one's
        lease expires and this delivery takes the sketch over.
        """
        give_up = time.monotonic() + self.config.lease_wait_s
        while True:
            claim = self.jobs.claim_sketch(
                task.job_id, task.index, worker=self.worker_id, lease_s=self.config.lease_s
            )
            remaining = give_up - time.monotonic()
            if claim.claim is not Claim.LEASED or remaining <= 0:
                return claim
            time.sleep(min(self.config.lease_poll_s, remaining))

    def _draw_claimed(self, job: JobRecord, index: int, delivery: int) -> bool:
        request = self._job_plan(job).request(index)
        model: SyncImageModel = self.model
        if self.gate is not None:
            # The slot is taken last, right before the call: whatever ran before it (claim,
            # plan, references) would otherwise bunch calls that were spaced as slots.
            wait_s = self.config.quota_wait_s
            self.model.prepare()
            if self.gate.acquire(request.model, job.owner_uid, max_wait_s=wait_s) is None:
                return self._requeue_for_quota(job, index)
            model = GatedModel(self.model, self.gate, job.owner_uid, wait_s, admitted=True)
        outcome = draw_sketch(model, request, self.config.retry, job.job_id)
        return self._record(job, index, delivery, outcome)

    def _requeue_for_quota(self, job: JobRecord, index: int) -> bool:
        """No model slot in time: give the sketch back unspent and queue it as a new message.

        Acked rather than nacked: waiting for quota is not a failed delivery (nacks count
        towards the dead-letter limit), and the worker is freed for other users' sketches.
        """
        log.info("no model slot within %.0f s: back in the queue", self.config.quota_wait_s)
        self.jobs.release_sketch(job.job_id, index, worker=self.worker_id, error=None, refund=True)
        self.queue.publish([SketchTask(job.job_id, index, job.priority)])
        return True

    def _record(self, job: JobRecord, index: int, delivery: int, outcome: SketchOutcome) -> bool:
        """Store a claimed sketch's outcome. False: released for another delivery."""
        record = outcome.record
        if outcome.transient and delivery < self.config.max_deliveries:
            self.jobs.release_sketch(
                job.job_id, index, worker=self.worker_id, error=record.error or "transient"
            )
            return False
        path = None
        if outcome.png is not None:
            if not self._still_held(job.job_id, index):
                # Cancelled (or taken over) during the model call: the sketch already ended
                # without this result, and its PNG must not land under the sketch's key —
                # a cancelled sketch has no file, and a takeover's winner owns that key.
                log.info("result discarded: the sketch ended while the model was drawing it")
                return True
            path = sketch_key(job.job_id, index)
            self.blobs.put(path, outcome.png, "image/png")
        previous_calls = job.sketch(index).attempts - 1
        state = SketchState(
            status=record.status,
            path=path,
            error=record.error,
            finish_reason=record.finish_reason,
            attempts=previous_calls + record.attempts,
            latency_s=record.latency_s,
            model_used=record.model_used,
            adapter=self.model.name if record.model_used else None,
            qa=record.qa,
        )
        result = self.jobs.finish_sketch(job.job_id, index, worker=self.worker_id, state=state)
        if not result.accepted:
            # Lost in the few milliseconds between the check above and this write: the PNG
            # may be stored, but nothing references it (the job, metadata.json and read_blob
            # only name the files of ``ok`` sketches) and the bucket's lifecycle rule expires it.
            log.warning("result discarded: the sketch ended (cancelled, or another worker won)")
        elif result.finalize:
            self.finalize_job(job.job_id)
        return True

    def _still_held(self, job_id: str, index: int) -> bool:
        """One read before the PNG is written: does this worker still hold the sketch?"""
        current = self.jobs.get_job(job_id)
        if current is None or str(index) not in current.sketches:
            return False
        state = current.sketch(index)
        return state.status == "running" and state.lease_owner == self.worker_id

    def _job_plan(self, job: JobRecord, *, load_images: bool = True) -> JobPlan:
        """The stored plan as the pipeline's ``JobPlan``; images are read only when drawing."""
        request = job.request
        config = GenerationConfig(
            num_images=request.num_images,
            image_size=request.image_size,
            aspect_ratio=request.aspect_ratio,
            model_name=job.plan.model_requested,
            seed=job.plan.seed,
            allow_text=request.allow_text,
        )
        retrieval = self._retrieval(job)
        references: tuple[ReferencePart, ...] = ()
        input_image = None
        if load_images:
            cap = resolve_model(job.plan.model_id).max_reference_images
            references = tuple(
                ReferencePart(reference=r.reference, data=Path(r.reference.path).read_bytes())
                for r in retrieval.items[:cap]
            )
            if job.parent is not None:
                input_image = self.blobs.get(input_key(job.job_id))
        return JobPlan(
            job_id=job.job_id,
            prompt_spec=job.plan.prompt_spec,
            retrieval=retrieval,
            config=config,
            seed=job.plan.seed,
            variations=job.plan.variations,
            model_id=job.plan.model_id,
            adapter=job.plan.adapter,
            references=references,
            parent=job.parent,
            input_image=input_image,
        )

    def _retrieval(self, job: JobRecord) -> RetrievalResult:
        items = []
        for entry in job.plan.references:
            path = (self.styles.root / entry.path).resolve()
            if not path.is_relative_to(self.styles.root.resolve()) or not path.is_file():
                log.warning("reference %s is gone; drawing without it", entry.path)
                continue
            if hashlib.sha256(path.read_bytes()).hexdigest() != entry.sha256:
                log.warning("reference %s changed since the job was planned", entry.path)
            reference = ReferenceImage(path=str(path), sha256=entry.sha256)
            items.append(ScoredReference(reference=reference, score=entry.score))
        return RetrievalResult(style_id=job.plan.prompt_spec.style_id, items=tuple(items))

    def finalize_job(self, job_id: str) -> JobRecord:
        """Write ``metadata.json`` (same shape as the library's) and set the final status.

        Safe to repeat: the metadata is built from the stored job only, so a second writer
        (a redelivery after the first finaliser died) writes identical bytes.
        """
        job = self.jobs.get_job(job_id)
        if job is None:
            raise NotFoundError(f"no job {job_id!r}")
        metadata = self.build_metadata(job)
        self.blobs.put(metadata_key(job_id), metadata.to_json(), "application/json")
        final = self.jobs.complete_job(job_id, metadata_path=metadata_key(job_id))
        with log_context(job_id=job_id):
            log.info("job %s", final.status)
        return final

    def build_metadata(self, job: JobRecord) -> JobMetadata:
        plan = self._job_plan(job, load_images=False)
        sketches = [self._sketch_record(job, int(i)) for i in sorted(job.sketches, key=int)]
        return JobMetadata.build(
            job_id=job.job_id,
            prompt_spec=job.plan.prompt_spec,
            retrieval=plan.retrieval,
            config=plan.config_record(),
            model=plan.model_record(
                sketches, next((s.adapter for s in job.sketches.values() if s.adapter), None)
            ),
            sketches=sketches,
            parent=job.parent,
            regenerated_from=job.regenerated_from,
            timestamp=job.created_at,
        )

    def _sketch_record(self, job: JobRecord, index: int) -> SketchRecord:
        state = job.sketch(index)
        variation = job.plan.variations[index]
        return SketchRecord(
            index=index,
            file=sketch_file(index) if state.status == "ok" else None,
            status=state.status,
            error=state.error,
            finish_reason=state.finish_reason,
            attempts=state.attempts,
            latency_s=state.latency_s,
            variation=variation,
            prompt=job.plan.prompt_spec.prompt_for(variation, allow_text=job.request.allow_text),
            seed=(job.plan.seed + index) % 2**31,
            model_used=state.model_used,
            qa=state.qa,
        )

    # -- regeneration ----------------------------------------------------------------------

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
            job, created = self.submit_job(
                original.owner_uid,
                original.request,
                idempotency_key=f"regenerate:{run_id}:{original.job_id}",
                regenerated_from=original.job_id,
                priority="batch",
                batch=BatchRef(submitted_at=utcnow()) if batch else None,
            )
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
                plan = self._job_plan(job)
                refs.append(BatchRef(first=len(requests), submitted_at=utcnow()))
                requests.extend(plan.request(int(i)) for i in sorted(job.sketches, key=int))
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
        plan = self._job_plan(job, load_images=False)
        with log_context(job_id=job.job_id):
            for index in sorted(int(i) for i in job.sketches):
                position = job.batch.first + index
                result: ImageResponse | Exception = (
                    status.results[position]
                    if position < len(status.results)
                    else ModelError(f"batch {status.name} has no answer for this sketch")
                )
                claim = self.jobs.claim_sketch(
                    job.job_id, index, worker=self.worker_id, lease_s=self.config.lease_s
                )
                if claim.claim is not Claim.CLAIMED or claim.job is None:
                    continue  # cancelled, or stored by an earlier collection
                # A missing or off-style answer gets its one stricter request here, directly
                # (through the quota gate when there is one), as a worker would make it.
                model: SyncImageModel = self.model
                if self.gate is not None:
                    wait_s = self.config.quota_wait_s
                    model = GatedModel(self.model, self.gate, job.owner_uid, wait_s)
                outcome = settle_sketch(
                    plan.request(index),
                    result,
                    job.job_id,
                    model=model,
                    policy=self.config.retry,
                )
                if not self._record(claim.job, index, claim.attempt, outcome):
                    self.queue.publish([SketchTask(job.job_id, index, "batch")])
            self.jobs.set_batch(job.job_id, None)

    # -- upkeep ----------------------------------------------------------------------------

    def sweep(self, *, stale_after: timedelta = timedelta(minutes=10)) -> dict[str, int]:
        """Nothing stuck: run on a schedule, safe to repeat and to run beside the workers.

        A job whose sketches have all ended is finalised; a job past its deadline has its
        unstarted sketches cancelled; a sketch whose lease expired (its worker died and the
        message is gone) or that has waited ``stale_after`` with no progress on the job is
        queued again (claims make a duplicate harmless). Jobs waiting on a Batch API batch
        are left to :meth:`collect_batches`.
        """
        now = utcnow()
        counts = {"finalized": 0, "deadline_cancelled": 0, "requeued": 0}
        for job in self.jobs.list_jobs(statuses=("queued", "running"), limit=1000):
            with log_context(job_id=job.job_id):
                if job.deadline is not None and now >= job.deadline and not job.all_ended:
                    # Sketches started in time may finish: only the unstarted ones end.
                    result = self.jobs.cancel_job(job.job_id, running=False)
                    counts["deadline_cancelled"] += result.accepted
                    job = result.job or job
                if job.all_ended:
                    self.finalize_job(job.job_id)
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
        return counts

    def _requeue(self, job: JobRecord) -> None:
        self.jobs.set_batch(job.job_id, None)
        pending = [int(i) for i, s in job.sketches.items() if s.status == "pending"]
        self.queue.publish([SketchTask(job.job_id, i, "batch") for i in sorted(pending)])
