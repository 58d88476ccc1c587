"""What a client does with its jobs: submit, read, cancel, refine, and read their files.

Every read is scoped to the owner: another user's job is reported exactly like a missing one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import timedelta
from pathlib import PurePath

from sketchgen import telemetry
from sketchgen.errors import ConflictError, InputError, NotFoundError, SketchgenError
from sketchgen.generate.plan import JobPlan, Refinement, VariationOf, plan_job
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

__all__ = ["JobService", "submission_hash"]

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
        catalog: StyleService,
        spend: SpendControl | None = None,
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
        # Built-in and user styles (bootstrap.builtin_styles_catalog: the built-ins only).
        self.catalog = catalog

    def warm_up(self) -> None:
        """Load every style and run one retrieval, at instance start: the first job's plan
        then reads no style files and its numpy paths are warm. A style that fails to load
        fails only the jobs that ask for it, as always: it is logged, and the others warm."""
        compiler = PromptCompiler()
        for style_id in self.styles.style_ids():
            try:
                style = self.styles.get_style(style_id)
                self.retriever.retrieve(compiler.compile("warm-up", style), style)
            except SketchgenError as error:
                log.warning("style %s not warmed: %s", style_id, error)

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
        variation_of: VariationOf | None = None,
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
        digest = submission_hash(
            request,
            deadline_s=deadline_s,
            parent=refinement.parent if refinement is not None else None,
            priority=priority,
            regenerated_from=regenerated_from,
        )
        if idempotency_key is not None:
            # First: a retry of an accepted job gets the original answer, never a limit's
            # refusal, and costs no admission, planning or storage.
            replay = self._replay(owner_uid, idempotency_key, digest)
            if replay is not None:
                return replay, False
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
                else self.catalog.retrieve(prompt_spec, style, owner_uid=owner_uid)
            )
            # Planned once, here, without I/O (the references by path and hash); stored with
            # the job, and read back as it is by whoever draws or finalises it (ADR 0060).
            plan = plan_job(
                job_id=job_id,
                prompt_spec=prompt_spec,
                retrieval=retrieval,
                config=config,
                model=self.model,
                refinement=refinement,
                variation_of=variation_of,
            )
            job, created = self._store_job(
                owner_uid,
                request,
                digest=digest,
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

    def _still_stored(self, retrieval: RetrievalResult) -> RetrievalResult:
        """The parent's references less those their owner has deleted since (a deleted
        reference's image is gone: the refinement redraws from the rest)."""
        kept = tuple(
            item
            for item in retrieval.items
            if PurePath(item.reference.path).is_absolute() or self.blobs.exists(item.reference.path)
        )
        return retrieval.model_copy(update={"items": kept})

    def _replay(self, owner_uid: str, idempotency_key: str, digest: str) -> JobRecord | None:
        """The job this key already created, if the request is the same; another request
        under the same key is refused (409 naming Idempotency-Key)."""
        existing = self.jobs.find_idempotent(owner_uid, idempotency_key)
        if existing is None:
            return None
        if existing.request_hash != digest:
            raise ConflictError("Idempotency-Key was already used with a different request")
        return existing

    def _ended_jobs(self, job_ids: Sequence[str]) -> list[JobRecord]:
        """Of ``job_ids``, the jobs that are final (their settlement may have been lost)."""
        ids = list(job_ids)
        return [j for j in self.jobs.list_jobs(job_ids=ids, limit=len(ids)) if j.is_final]

    def _store_job(
        self,
        owner_uid: str,
        request: JobRequest,
        *,
        digest: str,
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
        ).model_copy(update={"request_hash": digest})
        if deadline_s is not None:
            # Sketches not started by then are cancelled, not run (checked at every claim).
            record = record.model_copy(
                update={"deadline": record.created_at + timedelta(seconds=deadline_s)}
            )
        record = record.model_copy(update={"traceparent": telemetry.traceparent()})
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
        request = parent.request.model_copy(update={"num_images": num_images})
        parent_ref = ParentRef(job_id=job_id, index=index, instruction=instruction)
        if idempotency_key is not None:
            # Before the parent's image is read: a retry is answered from the key alone.
            digest = submission_hash(request, parent=parent_ref)
            replay = self._replay(owner_uid, idempotency_key, digest)
            if replay is not None:
                return replay, False
        state = parent.sketches.get(str(index))
        if state is None or state.status != "ok":
            made = [int(i) for i, s in parent.sketches.items() if s.status == "ok"]
            raise InputError(
                f"job {job_id} has no finished sketch {index}", field="index", allowed=made
            )
        refinement = Refinement(
            parent=parent_ref,
            image=self.blobs.get(sketch_key(job_id, index)),
            variation=parent.plan.variations[index],
        )
        return self.submit_job(
            owner_uid,
            request,
            idempotency_key=idempotency_key,
            refinement=refinement,
            references=self._still_stored(self.stored.job_plan(parent).retrieval),
            style_version=parent.plan.style_version,
        )

    def vary_sketch(
        self,
        owner_uid: str,
        job_id: str,
        index: int,
        *,
        num_images: int,
        idempotency_key: str | None = None,
    ) -> tuple[JobRecord, bool]:
        """A new job of ``num_images`` variations of sketch ``index`` (issue 27): the same
        brief, style and references, the sketch's layout, and its seed (variation ``i`` is
        drawn with the sketch's seed ``+ i``); the exaggeration varies."""
        parent = self.get_job(owner_uid, job_id)
        state = parent.sketches.get(str(index))
        if state is None or state.status != "ok":
            made = [int(i) for i, s in parent.sketches.items() if s.status == "ok"]
            raise InputError(
                f"job {job_id} has no finished sketch {index}", field="index", allowed=made
            )
        parent_plan = self.stored.job_plan(parent)
        sketch_seed = parent_plan.seed_for(index)  # the seed the sketch was drawn with
        request = parent.request.model_copy(update={"num_images": num_images, "seed": sketch_seed})
        return self.submit_job(
            owner_uid,
            request,
            idempotency_key=idempotency_key,
            variation_of=VariationOf(
                parent=ParentRef(job_id=job_id, index=index),
                variation=parent.plan.variations[index],
            ),
            references=parent_plan.retrieval,
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


def submission_hash(
    request: JobRequest,
    *,
    deadline_s: float | None = None,
    parent: ParentRef | None = None,
    priority: str = "interactive",
    regenerated_from: str | None = None,
) -> str:
    """The whole normalised submission an Idempotency-Key stands for: the request as
    validated, its deadline, and a refinement's parent sketch and instruction. Stored as the
    job's ``request_hash``; the same key with any other submission is a conflict."""
    canonical = {
        "request": request.model_dump(mode="json"),
        "deadline_s": deadline_s,
        "parent": parent.model_dump(mode="json") if parent is not None else None,
        "priority": priority,
        "regenerated_from": regenerated_from,
    }
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()
