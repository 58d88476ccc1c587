"""The stored job, shared by every capability: its plan as the pipeline's ``JobPlan``, a
claimed sketch's outcome written back to it, and the finalising ``metadata.json``.

Only the job document is read: whichever worker, collection or sweep finalises a job, and
however many times, the metadata comes out byte for byte the same.
"""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from sketchgen import telemetry
from sketchgen.errors import NotFoundError
from sketchgen.generate.config import GenerationConfig
from sketchgen.generate.models import resolve_model
from sketchgen.generate.pipeline import JobPlan, SketchOutcome
from sketchgen.jobs import JobRecord, PlanRecord, ReferenceEntry, SketchState, call_price_usd
from sketchgen.layout import input_key, metadata_key, sketch_file, sketch_key, style_reference_key
from sketchgen.logs import get_logger, log_context
from sketchgen.metadata import JobMetadata, SketchRecord
from sketchgen.ports import BlobStore, JobStore, ReferencePart
from sketchgen.schemas import ReferenceImage, RetrievalResult, ScoredReference
from sketchgen.styles import StyleRegistry
from sketchgen.styles.owned import is_user_style_id

if TYPE_CHECKING:
    from sketchgen.services.spending import SpendControl

__all__ = ["SketchRecorder", "StoredJobs", "plan_record", "sketch_cost_usd"]

log = get_logger(__name__)


def plan_record(plan: JobPlan, *, style_version: str | None = None) -> PlanRecord:
    """What of a fresh plan the job document keeps (reference paths relative to the styles)."""
    return PlanRecord(
        style_version=style_version,
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


def sketch_cost_usd(job: JobRecord, model_calls: int) -> float:
    """What one of ``job``'s sketches cost: every model call sent is charged
    (:func:`sketchgen.jobs.call_price_usd`), whatever it answered."""
    return round(model_calls * call_price_usd(job), 6)


class StoredJobs:
    """Reads a stored job back as a plan and finalises it (and, with ``spend``, settles
    its owner's usage once: docs/decisions/0012)."""

    def __init__(
        self,
        *,
        jobs: JobStore,
        blobs: BlobStore,
        styles: StyleRegistry,
        spend: SpendControl | None = None,
    ) -> None:
        self.jobs = jobs
        self.blobs = blobs
        self.styles = styles
        self.spend = spend

    def job_plan(self, job: JobRecord, *, load_images: bool = True) -> JobPlan:
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
                ReferencePart(reference=r.reference, data=self._reference_bytes(r.reference))
                for r in retrieval.items[:cap]
            )
            if job.parent is not None and job.parent.instruction is not None:
                # A refinement redraws its stored input; variations (no instruction) draw afresh.
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

    def _reference_bytes(self, reference: ReferenceImage) -> bytes:
        # A user style's reference path is its (relative) blob key; a built-in's a file.
        if not Path(reference.path).is_absolute():
            return self.blobs.get(reference.path)
        return Path(reference.path).read_bytes()

    def _retrieval(self, job: JobRecord) -> RetrievalResult:
        style_id = job.plan.prompt_spec.style_id
        if is_user_style_id(style_id):
            # Stored once by digest, never overwritten: the job's references are exactly
            # what it was planned with, even after the style changed or was deleted.
            return RetrievalResult(
                style_id=style_id,
                items=tuple(
                    ScoredReference(
                        reference=ReferenceImage(
                            path=style_reference_key(style_id, e.sha256), sha256=e.sha256
                        ),
                        score=e.score,
                    )
                    for e in job.plan.references
                ),
            )
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
        with telemetry.span("finalize", job_id=job_id):
            final = self._finalize(job_id)
            telemetry.job_ended(final)
            return final

    def _finalize(self, job_id: str) -> JobRecord:
        job = self.jobs.get_job(job_id)
        if job is None:
            raise NotFoundError(f"no job {job_id!r}")
        metadata = self.build_metadata(job)
        self.blobs.put(metadata_key(job_id), metadata.to_json(), "application/json")
        if self.spend is not None and job.all_ended:
            # Before the job turns final: if this fails, a redelivery finalises (and settles)
            # again; settling twice does nothing the second time.
            self.spend.settle_job(job)
        final = self.jobs.complete_job(job_id, metadata_path=metadata_key(job_id))
        with log_context(job_id=job_id):
            log.info("job %s", final.status)
        return final

    def build_metadata(self, job: JobRecord) -> JobMetadata:
        plan = self.job_plan(job, load_images=False)
        sketches = [_sketch_record(job, int(i)) for i in sorted(job.sketches, key=int)]
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
            style_version=job.plan.style_version,
        )


def _sketch_record(job: JobRecord, index: int) -> SketchRecord:
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
        cost_usd=state.cost_usd,
        model_calls=state.model_calls,
    )


class SketchRecorder:
    """Writes a claimed sketch's outcome back to the job, as one worker identity.

    The worker and the Batch API collection both claim sketches and store what the model
    answered; they share this, and claim with its ``worker_id``, so the lease they take is
    the one its writes are checked against.
    """

    def __init__(
        self,
        *,
        jobs: JobStore,
        blobs: BlobStore,
        stored: StoredJobs,
        adapter: str,
        max_deliveries: int,
        worker_id: str | None = None,
    ) -> None:
        self.jobs = jobs
        self.blobs = blobs
        self.stored = stored
        self.adapter = adapter
        self.max_deliveries = max_deliveries
        self.worker_id = worker_id or f"worker-{uuid.uuid4().hex[:12]}"

    def record(
        self,
        job: JobRecord,
        index: int,
        delivery: int,
        outcome: SketchOutcome,
        *,
        calls_sent: int | None = None,
    ) -> bool:
        """Store a claimed sketch's outcome (``job`` as claimed; ``calls_sent``: the model
        calls this delivery sent, by default the outcome's). False: released for another
        delivery."""
        record = outcome.record
        if outcome.transient and delivery < self.max_deliveries:
            self.jobs.release_sketch(
                job.job_id, index, worker=self.worker_id, error=record.error or "transient"
            )
            return False
        path = None
        if outcome.png is not None:
            if not self.still_held(job.job_id, index):
                # Cancelled (or taken over) during the model call: the sketch already ended
                # without this result, and its PNG must not land under the sketch's key —
                # a cancelled sketch has no file, and a takeover's winner owns that key.
                log.info("result discarded: the sketch ended while the model was drawing it")
                return True
            path = sketch_key(job.job_id, index)
            self.blobs.put(path, outcome.png, "image/png")
        previous_calls = job.sketch(index).attempts - 1
        sent = record.attempts if calls_sent is None else calls_sent
        model_calls = job.sketch(index).model_calls - 1 + sent  # the claim counted the first
        state = SketchState(
            status=record.status,
            path=path,
            error=record.error,
            finish_reason=record.finish_reason,
            attempts=previous_calls + record.attempts,
            latency_s=record.latency_s,
            model_used=record.model_used,
            adapter=self.adapter if record.model_used else None,
            qa=record.qa,
            cost_usd=sketch_cost_usd(job, model_calls),
            model_calls=model_calls,
        )
        result = self.jobs.finish_sketch(job.job_id, index, worker=self.worker_id, state=state)
        if not result.accepted:
            # Lost in the few milliseconds between the check above and this write: the PNG
            # may be stored, but nothing references it (the job, metadata.json and read_blob
            # only name the files of ``ok`` sketches) and the bucket's lifecycle rule expires it.
            log.warning("result discarded: the sketch ended (cancelled, or another worker won)")
        elif result.finalize:
            self.stored.finalize_job(job.job_id)
        return True

    def still_held(self, job_id: str, index: int) -> bool:
        """One read before the PNG is written: does this worker still hold the sketch?"""
        state = self.jobs.get_sketch(job_id, index)
        return (
            state is not None
            and state.status == "running"
            and (state.lease_owner == self.worker_id)
        )
