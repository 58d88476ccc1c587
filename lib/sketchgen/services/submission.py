"""What a client does with its jobs: submit, read, cancel, refine, and read their files.

Every read is scoped to the owner: another user's job is reported exactly like a missing one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sketchgen.errors import InputError, NotFoundError
from sketchgen.generate.pipeline import JobPlan, Refinement, plan_job
from sketchgen.jobs import BatchRef, JobRecord, JobRequest
from sketchgen.layout import METADATA_FILE, input_key, metadata_key, sketch_file, sketch_key
from sketchgen.logs import get_logger, log_context
from sketchgen.metadata import ParentRef, random_job_id
from sketchgen.ports import BlobStore, ImageModel, JobStore, SketchTask, TaskQueue
from sketchgen.prompt import PromptCompiler
from sketchgen.references import ImageRetriever
from sketchgen.schemas import MAX_INSTRUCTION_CHARS, RetrievalResult, clean_text
from sketchgen.services.config import ServiceConfig
from sketchgen.services.spending import SpendControl
from sketchgen.services.stored import StoredJobs, plan_record
from sketchgen.services.styles import StyleService
from sketchgen.styles import StyleRegistry
from sketchgen.styles.owned import style_version as _style_version

__all__ = ["JobService"]

log = get_logger(__name__)


class JobService:
    def __init__(
        self,
        *,
        jobs: JobStore,
        blobs: BlobStore,
        queue: TaskQueue,
        model: ImageModel,
        styles: StyleRegistry,
        stored: StoredJobs,
        retriever: ImageRetriever | None = None,
        config: ServiceConfig | None = None,
        spend: SpendControl | None = None,
        catalog: StyleService | None = None,
    ) -> None:
        self.jobs = jobs
        self.blobs = blobs
        self.queue = queue
        # Never called here: the plan records its name; the worker is the one that draws.
        self.model = model
        self.styles = styles
        self.stored = stored
        self.retriever = retriever or ImageRetriever()
        self.config = config or ServiceConfig()
        # Per-user plans and limits (docs/decisions/0012); None: no limits (the library's
        # own tests, a caller that meters elsewhere).
        self.spend = spend
        # Built-in and user styles; without one, the built-ins only (a user style's id is
        # then not found, as another user's is).
        self.catalog = catalog or StyleService.builtins_only(styles, blobs, self.retriever)

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
        references: RetrievalResult | None = None,
        style_version: str | None = None,
    ) -> tuple[JobRecord, bool]:
        """Plan the job, store it, queue one task per sketch. Returns ``(job, created)``.

        The style is resolved for ``owner_uid`` (another user's style is not found). A
        refinement passes its parent's ``references`` and ``style_version``: it redraws
        from what the parent was drawn from, not from the style as it is now.

        With ``batch`` nothing is queued: the sketches wait on a model-side batch instead
        (:class:`~sketchgen.services.batch.BatchRegeneration` submits it and stores its
        results).

        With spend control, a request outside the owner's plan is refused
        (:class:`NotEntitledError`), and one past a limit (:class:`LimitError`) before
        anything is stored or queued; the job's images are reserved here and settled when it
        is finalised. Batch-priority jobs (scheduled regeneration) count towards the owner's
        images but not the active-job cap.
        """
        style = self.catalog.resolve(owner_uid, request.style_id)
        prompt_spec = PromptCompiler().compile(request.brief, style)
        config = request.generation_config(default_model=self.config.default_model)
        spend = self.spend
        job_id = random_job_id()
        if spend is not None:
            # First: a refused request costs no retrieval, planning or storage.
            spend.admit(
                owner_uid,
                model=config.model_name,
                image_size=config.image_size,
                job_id=job_id,
                images=config.num_images,
                counts_active=priority != "batch",
                finished=self._ended_jobs,
            )
        try:
            retrieval = (
                references
                if references is not None
                else self.catalog.retrieve(prompt_spec, style, top_k=3)
            )
            plan = plan_job(
                job_id=job_id,
                prompt_spec=prompt_spec,
                retrieval=retrieval,
                config=config,
                model=self.model,
                refinement=refinement,
                read_reference=self.catalog.reference_bytes,
            )
            job, created = self._store_job(
                owner_uid,
                request,
                job_id=job_id,
                plan=plan,
                style_version=style_version or _style_version(style),
                refinement=refinement,
                idempotency_key=idempotency_key,
                regenerated_from=regenerated_from,
                priority=priority,
                batch=batch,
                deadline_s=deadline_s,
            )
        except BaseException:
            if spend is not None:
                spend.release(owner_uid, job_id, config.num_images)
            raise
        if not created and spend is not None:
            # An Idempotency-Key replay: the first submission holds the reservation.
            spend.release(owner_uid, job_id, config.num_images)
        if created and batch is None:
            # Stored, so charged: a failed publish leaves the job to the upkeep sweep, which
            # queues it again; its settlement then refunds what it never drew.
            with log_context(job_id=job.job_id):
                self.queue.publish(
                    [SketchTask(job.job_id, i, job.priority) for i in range(config.num_images)]
                )
                log.info("job queued with %d sketches", config.num_images)
        return job, created

    def _ended_jobs(self, job_ids: Sequence[str]) -> list[JobRecord]:
        """Of ``job_ids``, the jobs that are final (their settlement may have been lost)."""
        ids = list(job_ids)
        return [j for j in self.jobs.list_jobs(job_ids=ids, limit=len(ids)) if j.is_final]

    def _store_job(
        self,
        owner_uid: str,
        request: JobRequest,
        *,
        job_id: str,
        plan: JobPlan,
        style_version: str,
        refinement: Refinement | None,
        idempotency_key: str | None,
        regenerated_from: str | None,
        priority: str,
        batch: BatchRef | None,
        deadline_s: float | None,
    ) -> tuple[JobRecord, bool]:
        if refinement is not None:
            self.blobs.put(input_key(job_id), refinement.image, "image/png")
        record = JobRecord.new(
            job_id=job_id,
            owner_uid=owner_uid,
            request=request,
            plan=plan_record(plan, style_version=style_version),
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
        return self.jobs.create_job(record)

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
            return self.stored.finalize_job(job_id)
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
            owner_uid,
            request,
            idempotency_key=idempotency_key,
            refinement=refinement,
            references=self.stored.job_plan(parent, load_images=False).retrieval,
            style_version=parent.plan.style_version,
        )

    def read_blob(self, owner_uid: str, job_id: str, name: str) -> bytes:
        job = self.get_job(owner_uid, job_id)
        if name == METADATA_FILE and job.metadata_path:
            return self.blobs.get(metadata_key(job_id))
        for index, state in job.sketches.items():
            if name == sketch_file(int(index)) and state.status == "ok":
                return self.blobs.get(sketch_key(job_id, int(index)))
        raise NotFoundError(f"no {name!r} in job {job_id!r}")
