"""The job document: one per job, the single source of truth for its progress.

In the cloud it is ``jobs/{job_id}`` in Firestore, read directly by mobile clients; locally it
lives in SQLite or memory. Every store keeps exactly this shape (``JobRecord.to_doc``).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING, Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field

from sketchgen.metadata import ParentRef
from sketchgen.schemas import MAX_REFINE_IMAGES, Brief, Instruction, PromptSpec, Variation

if TYPE_CHECKING:
    from sketchgen.generate.config import GenerationConfig

__all__ = [
    "TERMINAL_SKETCH",
    "BatchRef",
    "CallResult",
    "Claim",
    "ClaimResult",
    "FinishResult",
    "JobRecord",
    "JobRequest",
    "JobStatus",
    "PlanRecord",
    "RefineRequest",
    "SketchState",
    "call_transition",
    "job_matches",
    "job_status_for",
    "known_fields",
    "renew_transition",
    "request_hash",
    "sketch_cost_usd",
    "utcnow",
]

JobStatus = Literal["queued", "running", "done", "partial", "failed", "cancelled"]
SketchStatusName = Literal["pending", "running", "ok", "failed", "cancelled"]
TERMINAL_SKETCH: frozenset[str] = frozenset({"ok", "failed", "cancelled"})
TERMINAL_JOB: frozenset[str] = frozenset({"done", "partial", "failed", "cancelled"})


def utcnow() -> datetime:
    return datetime.now(UTC)


def known_fields(model: type[BaseModel], data: Any) -> Any:
    """``data`` without the keys ``model`` (and the models in it) does not know.

    Stored documents are read tolerantly and written strictly: during a rolling deploy an
    instance still on the old version reads documents the new one wrote with a field it has
    not heard of, and must not fail on them (the models themselves forbid extra fields, so
    nothing unknown is ever written)."""
    if not isinstance(data, dict):
        return data
    kept = {}
    for name, value in data.items():
        field = model.model_fields.get(name)
        if field is not None:
            kept[name] = _known_in(field.annotation, value)
    return kept


def _known_in(annotation: Any, value: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return known_fields(annotation, value)
    args = get_args(annotation)
    origin = get_origin(annotation)
    if origin is dict and len(args) == 2 and isinstance(value, dict):
        return {k: _known_in(args[1], v) for k, v in value.items()}
    if origin in (tuple, list) and args and isinstance(value, (list, tuple)):
        return [_known_in(args[0], v) for v in value]
    models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
    if len(models) == 1 and isinstance(value, dict):  # X | None
        return known_fields(models[0], value)
    return value


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class JobRequest(_Model):
    """What the client asked for, as validated. Stored so a job can be re-run.

    The one statement of a request's limits: the HTTP body extends it, the CLI builds it
    (num_images, sizes and the model are checked by ``GenerationConfig``, as planned).
    """

    brief: Brief
    style_id: str = Field(max_length=64)
    num_images: int = 4
    image_size: str = "1K"
    aspect_ratio: str = "1:1"
    model: str | None = Field(default=None, max_length=100)
    seed: int | None = None
    allow_text: bool = False

    def generation_config(self, *, default_model: str, **extra: Any) -> GenerationConfig:
        """The generation settings this request asks for: the one translation, used by the
        service and the CLI (``extra``: what only the caller knows, e.g. ``output_dir``)."""
        from sketchgen.generate.config import GenerationConfig

        return GenerationConfig(
            num_images=self.num_images,
            image_size=self.image_size,
            aspect_ratio=self.aspect_ratio,
            seed=self.seed,
            allow_text=self.allow_text,
            model_name=self.model or default_model,
            **extra,
        )


class RefineRequest(_Model):
    """Redraw one sketch: the instruction and how many new sketches (HTTP body, CLI)."""

    instruction: Instruction
    num_images: int = Field(default=1, ge=1, le=MAX_REFINE_IMAGES)


def request_hash(request: JobRequest) -> str:
    canonical = json.dumps(request.model_dump(mode="json"), sort_keys=True).encode()
    return hashlib.sha256(canonical).hexdigest()


class ReferenceEntry(_Model):
    path: str  # relative to the styles root
    sha256: str
    score: float


class PlanRecord(_Model):
    """The fixed plan, so every worker draws its sketch exactly as the job was compiled:
    :class:`sketchgen.generate.plan.JobPlan` as stored, read back without I/O."""

    seed: int
    model_requested: str
    model_id: str
    adapter: str
    prompt_spec: PromptSpec
    variations: tuple[Variation, ...]
    references: tuple[ReferenceEntry, ...] = ()
    # The style as it was planned: a hash of its rules and reference set (issue 16).
    style_version: str | None = None
    # Every sketch's complete prompt and how many references are sent, as planned (ADR 0060).
    # Absent from documents stored before them: read back, they are derived once from the
    # fields above (generate.plan.sketch_prompts, the model table), as the planner did.
    prompts: tuple[str, ...] | None = None
    max_references: int | None = None


class SketchState(_Model):
    status: SketchStatusName = "pending"
    path: str | None = None
    error: str | None = None
    finish_reason: str | None = None
    attempts: int = 0
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    seq: int | None = None  # event order among ended sketches; the SSE event id
    latency_s: float | None = None
    model_used: str | None = None
    adapter: str | None = None  # the adapter that drew it (the plan's is the planner's)
    qa: dict[str, Any] | None = None
    ended_at: datetime | None = None
    cost_usd: float | None = None  # what the model billed for it (sketchgen.pricing)
    # Model calls sent for it, each charged when sent (docs/decisions/0025): the claim counts
    # the call it is about to make, every further call is counted before it is made.
    model_calls: int = 0


class BatchRef(_Model):
    """The model-side batch (Gemini Batch API) a job's sketches wait on.

    The job's sketch i is request ``first + i`` of the batch. ``name`` is None between
    creating the job and the batch being accepted, so a crash there is visible and healed.
    """

    name: str | None = None
    first: int = 0
    submitted_at: datetime


class JobRecord(_Model):
    job_id: str
    owner_uid: str
    status: JobStatus = "queued"
    created_at: datetime
    updated_at: datetime
    expire_at: datetime
    request: JobRequest
    plan: PlanRecord
    sketches: dict[str, SketchState]
    event_seq: int = 0
    metadata_path: str | None = None
    idempotency_key: str | None = None
    request_hash: str
    parent: ParentRef | None = None  # refinement: the sketch this job redraws
    regenerated_from: str | None = None  # scheduled regeneration: the job this one re-runs
    priority: Literal["interactive", "batch"] = "interactive"
    cancel_requested: bool = False
    deadline: datetime | None = None
    batch: BatchRef | None = None  # waiting on a model-side batch instead of the queue
    cost_usd: float | None = None  # the sketches' total, set when the job is final
    # W3C trace context of the span that submitted the job: the event stream joins its trace
    # (sketchgen.telemetry). Not a secret: ids only.
    traceparent: str | None = None

    @classmethod
    def new(
        cls,
        *,
        job_id: str,
        owner_uid: str,
        request: JobRequest,
        plan: PlanRecord,
        retention: timedelta,
        idempotency_key: str | None = None,
        parent: ParentRef | None = None,
        regenerated_from: str | None = None,
        priority: Literal["interactive", "batch"] = "interactive",
        batch: BatchRef | None = None,
        now: datetime | None = None,
    ) -> JobRecord:
        now = now or utcnow()
        return cls(
            job_id=job_id,
            owner_uid=owner_uid,
            created_at=now,
            updated_at=now,
            expire_at=now + retention,
            request=request,
            plan=plan,
            sketches={str(v.index): SketchState() for v in plan.variations},
            idempotency_key=idempotency_key,
            request_hash=request_hash(request),
            parent=parent,
            regenerated_from=regenerated_from,
            priority=priority,
            batch=batch,
        )

    def sketch(self, index: int) -> SketchState:
        return self.sketches[str(index)]

    @property
    def all_ended(self) -> bool:
        return all(s.status in TERMINAL_SKETCH for s in self.sketches.values())

    @property
    def is_final(self) -> bool:
        return self.status in TERMINAL_JOB

    def to_doc(self) -> dict[str, Any]:
        """The stored document (datetimes stay datetimes for Firestore timestamps)."""
        return self.model_dump(mode="python")

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> JobRecord:
        """A stored job, fields this version does not know ignored (:func:`known_fields`)."""
        return cls.model_validate(known_fields(cls, doc))


def sketch_cost_usd(job: JobRecord, model_calls: int) -> float:
    """What ``model_calls`` calls for one of ``job``'s sketches cost: the one cost rule
    (:func:`sketchgen.pricing.sketch_cost_usd`: every call charged when it is sent, whatever
    it answers), at the job's model, size and (Batch API or not) price."""
    from sketchgen import pricing

    return pricing.sketch_cost_usd(
        job.plan.model_id, job.request.image_size, model_calls, batch=job.batch is not None
    )


def job_status_for(sketches: dict[str, SketchState]) -> JobStatus:
    """The final status a job takes once every sketch has ended."""
    statuses = [s.status for s in sketches.values()]
    if all(s == "ok" for s in statuses):
        return "done"
    if any(s == "ok" for s in statuses):
        return "partial"
    if any(s == "cancelled" for s in statuses):
        return "cancelled"
    return "failed"


class Claim(Enum):
    CLAIMED = "claimed"  # this worker holds the lease: call the model
    ALREADY_ENDED = "already_ended"  # ok/failed/cancelled before: ack, do nothing
    LEASED = "leased"  # another live worker holds it: retry later
    MISSING = "missing"  # no such job or sketch: ack and drop


class ClaimResult(_Model):
    """``finalize``: this claim found the job cancelled or past its deadline and its write
    ended the job's last sketch, so the caller finalises (as :class:`FinishResult` says)."""

    claim: Claim
    attempt: int = 0
    job: JobRecord | None = None
    finalize: bool = False


class CallResult(_Model):
    """``held`` False: the sketch is no longer this worker's (make no call). ``calls``: the
    sketch's model calls, the one about to be made included."""

    held: bool
    calls: int = 0


class FinishResult(_Model):
    """``accepted`` is False when the lease was lost to another worker (its result wins).
    ``finalize`` is True for exactly one caller: the one whose write ended the last sketch."""

    accepted: bool
    finalize: bool = False
    job: JobRecord | None = None


# -- transitions ------------------------------------------------------------------------------
# Pure functions from a job to its next state. Every JobStore runs them inside its own
# transaction (a lock, BEGIN IMMEDIATE, a Firestore transaction), so the rules live once.


def _end_pending_as_cancelled(job: JobRecord, now: datetime, *, running: bool = False) -> JobRecord:
    """End the job's pending sketches (and with ``running`` the ones in flight) as cancelled.

    A running sketch loses its lease here: the worker's late ``finish_sketch`` is refused
    because the sketch has already ended, so a result that lands after a cancel is dropped.
    """
    ending = {"pending", "running"} if running else {"pending"}
    sketches = dict(job.sketches)
    seq = job.event_seq
    for key in sorted(sketches, key=int):
        if sketches[key].status in ending:
            seq += 1
            sketches[key] = sketches[key].model_copy(
                update={
                    "status": "cancelled",
                    "seq": seq,
                    "ended_at": now,
                    "error": "cancelled",
                    "lease_owner": None,
                    "lease_expires_at": None,
                    # The calls already sent stay charged: a cancel stops only future ones.
                    "cost_usd": sketch_cost_usd(job, sketches[key].model_calls),
                }
            )
    return job.model_copy(update={"sketches": sketches, "event_seq": seq, "updated_at": now})


def claim_transition(
    job: JobRecord | None, index: int, worker: str, lease_s: float, now: datetime
) -> tuple[JobRecord | None, ClaimResult]:
    """(the job to write, or None for no change; the claim's result)."""
    if job is None or str(index) not in job.sketches:
        return None, ClaimResult(claim=Claim.MISSING)
    expired = job.deadline is not None and now >= job.deadline
    if (job.cancel_requested or expired) and job.sketch(index).status == "pending":
        changed = _end_pending_as_cancelled(
            job.model_copy(update={"cancel_requested": True}) if expired else job, now
        )
        ended = ClaimResult(claim=Claim.ALREADY_ENDED, job=changed, finalize=changed.all_ended)
        return changed, ended
    state = job.sketch(index)
    if state.status in TERMINAL_SKETCH:
        return None, ClaimResult(claim=Claim.ALREADY_ENDED, job=job)
    if state.status == "running" and state.lease_expires_at and state.lease_expires_at > now:
        return None, ClaimResult(claim=Claim.LEASED, job=job)
    claimed = state.model_copy(
        update={
            "status": "running",
            "lease_owner": worker,
            "lease_expires_at": now + timedelta(seconds=lease_s),
            "attempts": state.attempts + 1,
            "model_calls": state.model_calls + 1,  # the call this claim is about to make
        }
    )
    changed = job.model_copy(
        update={
            "sketches": {**job.sketches, str(index): claimed},
            "status": "running" if job.status == "queued" else job.status,
            "updated_at": now,
        }
    )
    return changed, ClaimResult(claim=Claim.CLAIMED, attempt=claimed.attempts, job=changed)


def finish_transition(
    job: JobRecord | None, index: int, worker: str, state: SketchState, now: datetime
) -> tuple[JobRecord | None, FinishResult]:
    if job is None or str(index) not in job.sketches:
        return None, FinishResult(accepted=False)
    current = job.sketch(index)
    if current.status != "running" or current.lease_owner != worker:
        return None, FinishResult(accepted=False, job=job)
    seq = job.event_seq + 1
    ended = state.model_copy(
        update={"seq": seq, "ended_at": now, "lease_owner": None, "lease_expires_at": None}
    )
    changed = job.model_copy(
        update={
            "sketches": {**job.sketches, str(index): ended},
            "event_seq": seq,
            "updated_at": now,
        }
    )
    if changed.cancel_requested:
        changed = _end_pending_as_cancelled(changed, now)
    return changed, FinishResult(accepted=True, finalize=changed.all_ended, job=changed)


def release_transition(
    job: JobRecord | None,
    index: int,
    worker: str,
    error: str | None,
    now: datetime,
    *,
    refund: bool = False,
) -> JobRecord | None:
    if job is None or str(index) not in job.sketches:
        return None
    current = job.sketch(index)
    if current.status != "running" or current.lease_owner != worker:
        return None
    released = current.model_copy(
        update={
            "status": "pending",
            "lease_owner": None,
            "lease_expires_at": None,
            "error": current.error if refund else error,
            "attempts": current.attempts - 1 if refund else current.attempts,
            "model_calls": current.model_calls - 1 if refund else current.model_calls,
        }
    )
    return job.model_copy(
        update={"sketches": {**job.sketches, str(index): released}, "updated_at": now}
    )


def renew_transition(
    job: JobRecord | None, index: int, worker: str, lease_s: float, now: datetime
) -> tuple[JobRecord | None, bool]:
    """Extend the lease of a sketch ``worker`` holds to ``now + lease_s`` (True). Not held —
    ended (finished, cancelled), released, or taken over by another worker after the lease ran
    out — nothing changes (False): the worker stops drawing and drops its result. A lease that
    ran out but was not taken over is still the worker's: nobody else drew."""
    if job is None or str(index) not in job.sketches:
        return None, False
    current = job.sketch(index)
    if current.status != "running" or current.lease_owner != worker:
        return None, False
    renewed = current.model_copy(update={"lease_expires_at": now + timedelta(seconds=lease_s)})
    changed = job.model_copy(
        update={"sketches": {**job.sketches, str(index): renewed}, "updated_at": now}
    )
    return changed, True


def call_transition(
    job: JobRecord | None, index: int, worker: str, now: datetime
) -> tuple[JobRecord | None, CallResult]:
    """Count one more model call for a sketch this worker holds, before it is sent."""
    if job is None or str(index) not in job.sketches:
        return None, CallResult(held=False)
    current = job.sketch(index)
    if current.status != "running" or current.lease_owner != worker:
        return None, CallResult(held=False)
    counted = current.model_copy(update={"model_calls": current.model_calls + 1})
    changed = job.model_copy(
        update={"sketches": {**job.sketches, str(index): counted}, "updated_at": now}
    )
    return changed, CallResult(held=True, calls=counted.model_calls)


def cancel_transition(
    job: JobRecord | None, now: datetime, *, running: bool = True
) -> tuple[JobRecord | None, FinishResult]:
    """A user's cancel ends the running sketches too (``running``), so the job ends at once
    rather than when model calls already in flight return (10-40 s); a deadline passes
    ``running=False``: work started in time may finish."""
    if job is None:
        return None, FinishResult(accepted=False)
    if job.is_final or job.all_ended:
        return None, FinishResult(accepted=False, job=job)
    changed = _end_pending_as_cancelled(
        job.model_copy(update={"cancel_requested": True}), now, running=running
    )
    return changed, FinishResult(accepted=True, finalize=changed.all_ended, job=changed)


def complete_transition(
    job: JobRecord, metadata_path: str | None, now: datetime
) -> JobRecord | None:
    cost = round(sum(s.cost_usd or 0.0 for s in job.sketches.values()), 6)
    if job.is_final and job.metadata_path == metadata_path and job.cost_usd == cost:
        return None
    return job.model_copy(
        update={
            "status": job_status_for(job.sketches),
            "metadata_path": metadata_path,
            "cost_usd": cost,
            "updated_at": now,
        }
    )


def set_batch_transition(
    job: JobRecord | None, batch: BatchRef | None, now: datetime
) -> JobRecord | None:
    if job is None or job.batch == batch:
        return None
    return job.model_copy(update={"batch": batch, "updated_at": now})


def job_matches(
    job: JobRecord,
    *,
    owner_uid: str | None = None,
    style_id: str | None = None,
    statuses: Any = None,
) -> bool:
    """The ``list_jobs`` filter, for stores that filter in Python."""
    return (
        (owner_uid is None or job.owner_uid == owner_uid)
        and (style_id is None or job.request.style_id == style_id)
        and (statuses is None or job.status in statuses)
    )
