"""The stored job, shared by every capability: its plan as stored at admission, the bytes a
sketch is drawn with, a claimed sketch's outcome written back, and the final ``metadata.json``.

The plan is made once, when the job is admitted (:func:`sketchgen.generate.plan.plan_job`),
and stored with it (:func:`plan_record`); :meth:`StoredJobs.job_plan` reads it back without
I/O and decides nothing again (ADR 0060). Only the job document is read to finalise:
whichever worker, collection or sweep finalises a job, and however many times, the metadata
comes out byte for byte the same.
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
from sketchgen.generate.pipeline import SketchOutcome
from sketchgen.generate.plan import (
    JobPlan,
    PlanImages,
    job_metadata,
    read_images,
    sketch_prompts,
)
from sketchgen.jobs import JobRecord, PlanRecord, ReferenceEntry, SketchState, sketch_cost_usd
from sketchgen.layout import input_key, metadata_key, sketch_file, sketch_key, style_reference_key
from sketchgen.logs import get_logger, log_context
from sketchgen.metadata import JobMetadata, SketchRecord
from sketchgen.ports import BlobStore, JobStore
from sketchgen.schemas import ReferenceImage, RetrievalResult, ScoredReference
from sketchgen.styles import StyleRegistry
from sketchgen.styles.owned import is_user_style_id

if TYPE_CHECKING:
    from sketchgen.services.spending import SpendControl

__all__ = ["SketchRecorder", "StoredJobs", "plan_record"]

log = get_logger(__name__)


def plan_record(plan: JobPlan, *, style_version: str | None = None) -> PlanRecord:
    """The plan as the job document keeps it (reference paths relative to the styles)."""
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
        prompts=plan.prompts,
        max_references=plan.max_references,
    )


class StoredJobs:
    """Reads a stored job's plan back and finalises it (and, with ``spend``, settles its
    owner's usage once: docs/decisions/0012)."""

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

    def job_plan(self, job: JobRecord) -> JobPlan:
        """The plan stored with ``job`` when it was admitted. No I/O, nothing planned again:
        a document stored before the plan kept its prompts and reference cap gets them
        derived here, once per read, from what it does keep (as the planner derived them)."""
        stored, request = job.plan, job.request
        config = GenerationConfig(
            num_images=request.num_images,
            image_size=request.image_size,
            aspect_ratio=request.aspect_ratio,
            model_name=stored.model_requested,
            seed=stored.seed,
            allow_text=request.allow_text,
        )
        prompts = stored.prompts
        if prompts is None or len(prompts) != len(stored.variations):
            prompts = sketch_prompts(
                stored.prompt_spec,
                stored.variations,
                allow_text=request.allow_text,
                instruction=job.parent.instruction if job.parent else None,
            )
        return JobPlan(
            job_id=job.job_id,
            prompt_spec=stored.prompt_spec,
            retrieval=self._retrieval(job),
            config=config,
            seed=stored.seed,
            variations=stored.variations,
            prompts=prompts,
            model_id=stored.model_id,
            adapter=stored.adapter,
            max_references=(
                stored.max_references
                if stored.max_references is not None
                else resolve_model(stored.model_id).max_reference_images
            ),
            parent=job.parent,
            batch=job.batch is not None,
        )

    def images(self, plan: JobPlan) -> PlanImages:
        """The bytes to draw ``plan``'s sketches with, each read once: its references (a
        built-in's file, a user style's blob) and a refinement's stored input sketch."""
        return read_images(
            plan,
            self._reference_bytes,
            self.blobs.get(input_key(plan.job_id)) if plan.redraws_input else None,
        )

    def _reference_bytes(self, reference: ReferenceImage) -> bytes | None:
        # A user style's reference path is its (relative) blob key, stored once by digest
        # and never overwritten; a built-in's, a file under the styles root.
        if not Path(reference.path).is_absolute():
            return self.blobs.get(reference.path)
        root = self.styles.root.resolve()
        path = Path(reference.path).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            log.warning("reference %s is gone; drawing without it", reference.path)
            return None
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != reference.sha256:
            log.warning("reference %s changed since the job was planned", reference.path)
        return data

    def _retrieval(self, job: JobRecord) -> RetrievalResult:
        """The stored references as the plan names them (no I/O): a user style's by its
        blob key, a built-in's by its file under the styles root."""
        style_id = job.plan.prompt_spec.style_id
        user_style = is_user_style_id(style_id)
        root = self.styles.root.absolute()
        return RetrievalResult(
            style_id=style_id,
            items=tuple(
                ScoredReference(
                    reference=ReferenceImage(
                        path=(
                            style_reference_key(style_id, e.sha256)
                            if user_style
                            else str(root / e.path)
                        ),
                        sha256=e.sha256,
                    ),
                    score=e.score,
                )
                for e in job.plan.references
            ),
        )

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
        """``metadata.json`` from the stored plan and the sketches' states, by the one
        function the library uses too (:func:`sketchgen.generate.plan.job_metadata`)."""
        plan = self.job_plan(job)
        return job_metadata(
            plan,
            [_sketch_record(plan, job, int(i)) for i in job.sketches],
            timestamp=job.created_at,
            drawn_by=next((s.adapter for s in job.sketches.values() if s.adapter), None),
            regenerated_from=job.regenerated_from,
            style_version=job.plan.style_version,
        )


def _sketch_record(plan: JobPlan, job: JobRecord, index: int) -> SketchRecord:
    state = job.sketch(index)
    return plan.sketch(
        index,
        file=sketch_file(index) if state.status == "ok" else None,
        status=state.status,
        error=state.error,
        finish_reason=state.finish_reason,
        attempts=state.attempts,
        latency_s=state.latency_s,
        model_used=state.model_used,
        qa=state.qa,
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
