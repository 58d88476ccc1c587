"""``/v1/jobs``: submit, read, cancel and refine a job (the submission capability)."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field
from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from sketchgen import telemetry
from sketchgen.api.core import (
    Routing,
    base_url,
    checked_job_id,
    idempotency_key,
    json_response,
    reads_body,
)
from sketchgen.errors import RequestError
from sketchgen.jobs import JobRecord, JobRequest, RefineRequest
from sketchgen.layout import metadata_key, sketch_key

__all__ = ["CreateJobBody", "JobRoutes", "RefineBody"]


class RefineBody(RefineRequest):
    """``POST /v1/jobs/{id}/sketches/{i}/refine``. Strict, like :class:`CreateJobBody`."""

    model_config = ConfigDict(strict=True)


class CreateJobBody(JobRequest):
    """``POST /v1/jobs``: a :class:`JobRequest` (its limits) plus how long the job may wait.

    Strict: ``"4"`` is not a number and unknown fields are refused.
    """

    model_config = ConfigDict(strict=True)
    deadline_s: int | None = Field(default=None, ge=10, le=86_400)


class JobRoutes:
    def __init__(self, routing: Routing, *, events_base_url: str | None = None) -> None:
        self.routing = routing
        # The stream is its own function (its own URL) in the cloud; None: this API serves it.
        self.events_base_url = events_base_url.rstrip("/") if events_base_url else None

    def rules(self) -> list[Rule]:
        return [
            Rule("/v1/jobs", endpoint=self.create_job, methods=["POST"]),
            Rule("/v1/jobs/<job_id>", endpoint=self.get_job, methods=["GET"]),
            Rule("/v1/jobs/<job_id>/cancel", endpoint=self.cancel_job, methods=["POST"]),
            Rule(
                "/v1/jobs/<job_id>/sketches/<int:index>/refine",
                endpoint=self.refine,
                methods=["POST"],
            ),
            Rule("/v1/usage", endpoint=self.usage, methods=["GET"]),
            Rule("/v1/me", endpoint=self.delete_me, methods=["DELETE"]),
        ]

    @reads_body("json")
    def create_job(self, request: Request) -> Response:
        # The job's trace starts here (or joins the caller's W3C traceparent).
        caller = telemetry.extract(dict(request.headers))
        with telemetry.span("POST /v1/jobs", kind=telemetry.SpanKind.SERVER, parent=caller) as span:
            uid = self.routing.uid(request)
            telemetry.set_fields(span, user_id=uid)
            parsed = self.routing.body(request, CreateJobBody)
            key = idempotency_key(request)
            job_request = JobRequest(**parsed.model_dump(exclude={"deadline_s"}))
            job, _ = self.routing.service().submission.submit_job(
                uid, job_request, idempotency_key=key, deadline_s=parsed.deadline_s
            )
            telemetry.set_fields(span, job_id=job.job_id, model=job.plan.model_id)
            return self._accepted(request, job)

    @reads_body("json")
    def refine(self, request: Request, job_id: str, index: int) -> Response:
        uid = self.routing.uid(request)
        parsed = self.routing.body(request, RefineBody)
        job, _ = self.routing.service().submission.refine_sketch(
            uid,
            checked_job_id(job_id),
            index,
            parsed.instruction,
            num_images=parsed.num_images,
            idempotency_key=idempotency_key(request),
        )
        return self._accepted(request, job)

    def usage(self, request: Request) -> Response:
        """The caller's plan, today's images and cost, and active jobs (docs/CLIENTS.md)."""
        uid = self.routing.uid(request)
        spend = self.routing.service().spend
        if spend is None:
            raise RequestError(404, "not_found", "usage is not tracked (spend control is off)")
        return json_response(spend.usage(uid), headers={"Cache-Control": "no-store"})

    def delete_me(self, request: Request) -> Response:
        """Everything the caller owns: jobs and their files, styles and their references,
        usage history (docs/CLIENTS.md). Today's spend counters stay until the day ends."""
        uid = self.routing.uid(request)
        deleted = self.routing.service().erasure.delete_user_data(uid)
        return json_response(deleted, headers={"Cache-Control": "no-store"})

    def get_job(self, request: Request, job_id: str) -> Response:
        uid = self.routing.uid(request)
        job = self.routing.service().submission.get_job(uid, checked_job_id(job_id))
        return json_response(self.job_view(request, job))

    def cancel_job(self, request: Request, job_id: str) -> Response:
        uid = self.routing.uid(request)
        job = self.routing.service().submission.cancel_job(uid, checked_job_id(job_id))
        return json_response(self.job_view(request, job), 202)

    def _accepted(self, request: Request, job: JobRecord) -> Response:
        base = base_url(request)
        status_url = f"{base}/v1/jobs/{job.job_id}"
        events_url = f"{self.events_base_url or base}/v1/jobs/{job.job_id}/events"
        payload = {
            "job_id": job.job_id,
            "status": job.status,
            "status_url": status_url,
            "events_url": events_url,
            "firestore_doc": f"jobs/{job.job_id}",
        }
        return json_response(payload, 202, {"Location": status_url})

    def job_view(self, request: Request, job: JobRecord) -> dict[str, Any]:
        sketches = []
        for index in sorted(job.sketches, key=int):
            state = job.sketches[index]
            url = None
            if state.status == "ok":
                key = sketch_key(job.job_id, int(index))
                url = self.routing.blob_url(request, job.job_id, key)
            variation = job.plan.variations[int(index)]
            sketches.append(
                {
                    "index": int(index),
                    "status": state.status,
                    "url": url,
                    "error": state.error,
                    "finish_reason": state.finish_reason,
                    "attempts": state.attempts,
                    "model_calls": state.model_calls,  # each charged when sent
                    "cost_usd": state.cost_usd,
                    # Which model drew it: the page badges the offline sketch model's work.
                    "model_used": state.model_used,
                    "variation": {
                        "layout": variation.layout,
                        "exaggeration": variation.exaggeration,
                    },
                }
            )
        metadata_url = None
        if job.metadata_path:
            metadata_url = self.routing.blob_url(request, job.job_id, metadata_key(job.job_id))
        return {
            "job_id": job.job_id,
            "status": job.status,
            "created_at": job.created_at.isoformat(),
            "updated_at": job.updated_at.isoformat(),
            "deadline": job.deadline.isoformat() if job.deadline else None,
            "request": job.request.model_dump(),
            "sketches": sketches,
            "metadata_url": metadata_url,
            "parent": job.parent.model_dump() if job.parent else None,
            "regenerated_from": job.regenerated_from,
            "model_calls": sum(s.model_calls for s in job.sketches.values()),
            "cost_usd": job.cost_usd,
        }
