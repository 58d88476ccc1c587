"""A designer's studio (issue 27): history, favourites, exports, thumbnails, variations and
deleting a job. Same rules as every route: the caller authenticated, only their own jobs,
another user's job answered exactly like a missing one (404)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from sketchgen.api.core import (
    Routing,
    base_url,
    checked_job_id,
    idempotency_key,
    json_response,
    reads_body,
)
from sketchgen.errors import InputError
from sketchgen.exports import checked_format
from sketchgen.jobs import JobRecord
from sketchgen.schemas import MAX_REFINE_IMAGES

__all__ = ["StudioRoutes", "VariationsBody"]

_MAX_QUERY_CHARS = 200


class VariationsBody(BaseModel):
    """``POST /v1/jobs/{id}/sketches/{i}/variations``. Strict, like the other bodies."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
    num_images: int = Field(default=3, ge=1, le=MAX_REFINE_IMAGES)


def _int_arg(request: Request, name: str, default: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit():
        raise InputError(f"{name} must be a whole number", field=name)
    return int(raw)


def _text_arg(request: Request, name: str, max_chars: int) -> str | None:
    value = request.args.get(name)
    if value is None or not value.strip():
        return None
    if len(value) > max_chars or not value.isprintable():
        raise InputError(f"{name} must be at most {max_chars} printable characters", field=name)
    return value.strip()


class StudioRoutes:
    def __init__(self, routing: Routing) -> None:
        self.routing = routing

    def rules(self) -> list[Rule]:
        sketch = "/v1/jobs/<job_id>/sketches/<int:index>"
        return [
            Rule("/v1/jobs", endpoint=self.list_jobs, methods=["GET"]),
            Rule("/v1/jobs/<job_id>", endpoint=self.delete_job, methods=["DELETE"]),
            Rule(f"{sketch}/favourite", endpoint=self.favourite, methods=["PUT", "DELETE"]),
            Rule("/v1/favourites", endpoint=self.list_favourites, methods=["GET"]),
            Rule(f"{sketch}/export", endpoint=self.export, methods=["GET"]),
            Rule(f"{sketch}/thumbnail", endpoint=self.thumbnail, methods=["GET"]),
            Rule(f"{sketch}/variations", endpoint=self.variations, methods=["POST"]),
        ]

    def list_jobs(self, request: Request) -> Response:
        uid = self.routing.uid(request)
        studio = self.routing.service().studio
        page, next_cursor = studio.list_jobs(
            uid,
            limit=_int_arg(request, "limit", 20),
            cursor=_text_arg(request, "cursor", 400),
            style_id=_text_arg(request, "style", 64),
            query=_text_arg(request, "q", _MAX_QUERY_CHARS),
        )
        jobs = [self._summary(request, uid, job) for job in page.jobs]
        return json_response(
            {"jobs": jobs, "next_cursor": next_cursor}, headers={"Cache-Control": "no-store"}
        )

    def delete_job(self, request: Request, job_id: str) -> Response:
        uid = self.routing.uid(request)
        self.routing.service().studio.delete_job(uid, checked_job_id(job_id))
        return Response(status=204)

    def favourite(self, request: Request, job_id: str, index: int) -> Response:
        uid = self.routing.uid(request)
        studio = self.routing.service().studio
        if request.method == "PUT":
            studio.favourite(uid, checked_job_id(job_id), index)
        else:
            studio.unfavourite(uid, checked_job_id(job_id), index)
        return Response(status=204)

    def list_favourites(self, request: Request) -> Response:
        uid = self.routing.uid(request)
        page = self.routing.service().studio.list_favourites(
            uid, limit=_int_arg(request, "limit", 50), cursor=_text_arg(request, "cursor", 400)
        )
        base = base_url(request)
        sketches = [
            {
                "job_id": star.job_id,
                "index": star.index,
                "favourited_at": star.created_at.isoformat(),
                "brief": job.request.brief,
                "style_id": job.request.style_id,
                "job_created_at": job.created_at.isoformat(),
                "thumbnail_url": f"{base}/v1/jobs/{star.job_id}/sketches/{star.index}/thumbnail",
            }
            for star, job in page.favourites
        ]
        return json_response(
            {"sketches": sketches, "next_cursor": page.next_cursor},
            headers={"Cache-Control": "no-store"},
        )

    def export(self, request: Request, job_id: str, index: int) -> Response:
        uid = self.routing.uid(request)
        fmt = checked_format(request.args.get("format", ""))
        data, mimetype, name = self.routing.service().studio.export(
            uid, checked_job_id(job_id), index, fmt
        )
        return Response(
            data,
            mimetype=mimetype,
            headers={
                "Content-Disposition": f'attachment; filename="{name}"',
                "Cache-Control": "private, max-age=300",
            },
        )

    def thumbnail(self, request: Request, job_id: str, index: int) -> Response:
        uid = self.routing.uid(request)
        data = self.routing.service().studio.thumbnail(uid, checked_job_id(job_id), index)
        # A sketch never changes once made: the browser may keep its thumbnail.
        return Response(
            data, mimetype="image/png", headers={"Cache-Control": "private, max-age=86400"}
        )

    @reads_body("json")
    def variations(self, request: Request, job_id: str, index: int) -> Response:
        uid = self.routing.uid(request)
        parsed = self.routing.body(request, VariationsBody)
        job, _ = self.routing.service().studio.vary(
            uid,
            checked_job_id(job_id),
            index,
            num_images=parsed.num_images,
            idempotency_key=idempotency_key(request),
        )
        status_url = f"{base_url(request)}/v1/jobs/{job.job_id}"
        payload = {
            "job_id": job.job_id,
            "status": job.status,
            "status_url": status_url,
            "parent": job.parent.model_dump() if job.parent else None,
        }
        return json_response(payload, 202, {"Location": status_url})

    def _summary(self, request: Request, uid: str, job: JobRecord) -> dict[str, Any]:
        base = base_url(request)
        stars = self.routing.service().studio.favourite_indices(uid, job.job_id)
        sketches = []
        for key in sorted(job.sketches, key=int):
            state, index = job.sketches[key], int(key)
            made = state.status == "ok"
            sketches.append(
                {
                    "index": index,
                    "status": state.status,
                    "thumbnail_url": (
                        f"{base}/v1/jobs/{job.job_id}/sketches/{index}/thumbnail" if made else None
                    ),
                    "favourite": index in stars,
                    "layout": job.plan.variations[index].layout,
                    "exaggeration": job.plan.variations[index].exaggeration,
                }
            )
        parent = job.parent
        return {
            "job_id": job.job_id,
            "brief": job.request.brief,
            "style_id": job.request.style_id,
            "status": job.status,
            "created_at": job.created_at.isoformat(),
            "image_size": job.request.image_size,
            "aspect_ratio": job.request.aspect_ratio,
            "parent": (
                {
                    "job_id": parent.job_id,
                    "index": parent.index,
                    "kind": "refinement" if parent.instruction else "variation",
                    "instruction": parent.instruction,
                }
                if parent
                else None
            ),
            "sketches": sketches,
        }
