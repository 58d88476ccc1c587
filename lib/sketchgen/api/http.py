"""The public HTTP API, as one WSGI app over the capabilities in :mod:`sketchgen.services`.

Cloud functions hand their Flask request to :meth:`Api.handle`; ``sketchgen serve`` and
``make dev`` serve the same routes. Errors are always ``{"error": {code, message, field}}``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote

from pydantic import ConfigDict, Field, ValidationError
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from sketchgen.api.auth import Authenticator
from sketchgen.errors import (
    RequestError,
    SketchgenError,
    UnknownStyleError,
)
from sketchgen.jobs import JobRecord, JobRequest, RefineRequest
from sketchgen.layout import METADATA_FILE, metadata_key, sketch_file, sketch_key
from sketchgen.logs import get_logger
from sketchgen.metadata import JOB_ID
from sketchgen.services import SketchService

__all__ = ["JOB_ID", "Api", "error_response"]

log = get_logger(__name__)

_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")


class RefineBody(RefineRequest):
    """``POST /v1/jobs/{id}/sketches/{i}/refine``. Strict, like :class:`CreateJobBody`."""

    model_config = ConfigDict(strict=True)


class CreateJobBody(JobRequest):
    """``POST /v1/jobs``: a :class:`JobRequest` (its limits) plus how long the job may wait.

    Strict: ``"4"`` is not a number and unknown fields are refused.
    """

    model_config = ConfigDict(strict=True)
    deadline_s: int | None = Field(default=None, ge=10, le=86_400)


def page_headers(connect_origins: Iterable[str] = ()) -> dict[str, str]:
    """The page loads only its own assets (the Firebase SDK is bundled with them); it talks to
    the API, the stream, signed blob URLs and Google's sign-in over HTTPS, plus any non-HTTPS
    origin the deployment names (local emulators); nobody may frame it."""
    connect = " ".join(["'self'", "https:", *sorted(set(connect_origins))])
    policy = "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' blob: data:",
            f"connect-src {connect}",
            "frame-src https://*.firebaseapp.com",
            "frame-ancestors 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "object-src 'none'",
        ]
    )
    return {
        "Cache-Control": "no-cache",
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        json.dumps(payload, default=str),
        status=status,
        headers=headers,
        mimetype="application/json",
    )


def error_response(error: SketchgenError) -> Response:
    """The one mapping from the error tree to HTTP: status, code and message from the class."""
    if error.http_status >= 500:
        log.exception("%s (%s)", error.code, type(error).__name__)
    code, message, field = error.public()
    body = {"error": {"code": code, "message": message, "field": field}}
    headers = {"WWW-Authenticate": "Bearer"} if error.http_status == 401 else None
    return json_response(body, error.http_status, headers)


def _validation_error(error: ValidationError) -> RequestError:
    first = error.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or "body"
    return RequestError(422, "invalid_argument", f"{field}: {first['msg']}", field)


class Api:
    """Routes → service calls. ``routes`` picks the subset a function serves."""

    ALL_ROUTES = frozenset({"jobs", "events", "styles", "health", "blobs", "web"})

    def __init__(
        self,
        service: Callable[[], SketchService],
        authenticator: Callable[[], Authenticator],
        *,
        routes: Iterable[str] = ALL_ROUTES,
        events_base_url: str | None = None,
        cors_origins: Iterable[str] = (),
        max_body_bytes: int = 16 * 1024,
        signed_url_ttl_s: int = 900,
        heartbeat_s: float = 15.0,
        web_config: dict[str, Any] | None = None,
        connect_origins: Iterable[str] = (),
    ) -> None:
        self.page_headers = page_headers(connect_origins)
        self._service = service
        self._authenticator = authenticator
        self.events_base_url = events_base_url.rstrip("/") if events_base_url else None
        self.cors_origins = frozenset(o.strip() for o in cors_origins if o.strip())
        self.max_body_bytes = max_body_bytes
        self.signed_url_ttl_s = signed_url_ttl_s
        self.heartbeat_s = heartbeat_s
        self.web_config = web_config or {"auth": "firebase"}
        enabled = set(routes)
        rules = []
        if "health" in enabled:
            rules.append(Rule("/healthz", endpoint="health", methods=["GET"]))
        if "jobs" in enabled:
            rules += [
                Rule("/v1/jobs", endpoint="create_job", methods=["POST"]),
                Rule("/v1/jobs/<job_id>", endpoint="get_job", methods=["GET"]),
                Rule("/v1/jobs/<job_id>/cancel", endpoint="cancel_job", methods=["POST"]),
                Rule(
                    "/v1/jobs/<job_id>/sketches/<int:index>/refine",
                    endpoint="refine",
                    methods=["POST"],
                ),
            ]
        if "blobs" in enabled:
            rules += [
                Rule("/v1/jobs/<job_id>/files/<name>", endpoint="get_file", methods=["GET"]),
                Rule("/v1/jobs/<job_id>/archive.zip", endpoint="archive", methods=["GET"]),
            ]
        if "web" in enabled:
            rules += [
                Rule("/", endpoint="web_index", methods=["GET"]),
                # Not /static/: functions-framework is a Flask app and Flask's own static
                # route owns that path on the deployed function.
                Rule("/assets/<name>", endpoint="web_static", methods=["GET"]),
                Rule("/config.json", endpoint="web_config", methods=["GET"]),
            ]
        if "events" in enabled:
            rules.append(Rule("/v1/jobs/<job_id>/events", endpoint="events", methods=["GET"]))
        if "styles" in enabled:
            rules += [
                Rule("/v1/styles", endpoint="list_styles", methods=["GET"]),
                Rule("/v1/styles/<style_id>", endpoint="get_style", methods=["GET"]),
                Rule(
                    "/v1/styles/<style_id>/references/<sha256>.png",
                    endpoint="style_reference",
                    methods=["GET"],
                ),
            ]
        self.url_map = Map(rules, strict_slashes=False)

    # -- plumbing --------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        return self.handle(Request(environ))(environ, start_response)

    def handle(self, request: Request) -> Response:
        if request.method == "OPTIONS":
            return self._cors(request, Response(status=204))
        try:
            endpoint, args = self.url_map.bind_to_environ(request.environ).match()
            response = getattr(self, f"_{endpoint}")(request, **args)
        except (NotFound, MethodNotAllowed) as error:
            code = "not_found" if isinstance(error, NotFound) else "method_not_allowed"
            response = error_response(
                RequestError(error.code or 404, code, error.description or code)
            )
        except HTTPException as error:
            response = error_response(
                RequestError(error.code or 400, "bad_request", str(error.description))
            )
        except SketchgenError as error:  # AuthError included: it is an AuthenticationError
            response = error_response(error)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return self._cors(request, response)

    def _cors(self, request: Request, response: Response) -> Response:
        origin = request.headers.get("Origin")
        if origin and ("*" in self.cors_origins or origin in self.cors_origins):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"
            response.headers["Access-Control-Allow-Headers"] = (
                "Authorization, Content-Type, Idempotency-Key, Last-Event-ID"
            )
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            response.headers["Access-Control-Max-Age"] = "3600"
        return response

    def _uid(self, request: Request) -> str:
        return self._authenticator().uid_for(request.headers.get("Authorization"))

    @staticmethod
    def _job_id(job_id: str) -> str:
        if not JOB_ID.fullmatch(job_id):
            raise RequestError(404, "not_found", f"no job {job_id!r}")
        return job_id

    def _base(self, request: Request) -> str:
        # Behind a prefix (a function URL, a proxy that strips it) the proxy says which.
        prefix = request.headers.get("X-Forwarded-Prefix", "").strip("/")
        base = request.host_url.rstrip("/")
        return f"{base}/{quote(prefix)}" if prefix else base

    def _blob_url(self, request: Request, job_id: str, key: str) -> str:
        signed = self._service().blobs.signed_url(key, expires_s=self.signed_url_ttl_s)
        return signed or f"{self._base(request)}/v1/jobs/{job_id}/files/{key.rsplit('/', 1)[1]}"

    def job_view(self, request: Request, job: JobRecord) -> dict[str, Any]:
        sketches = []
        for index in sorted(job.sketches, key=int):
            state = job.sketches[index]
            url = None
            if state.status == "ok":
                url = self._blob_url(request, job.job_id, sketch_key(job.job_id, int(index)))
            variation = job.plan.variations[int(index)]
            sketches.append(
                {
                    "index": int(index),
                    "status": state.status,
                    "url": url,
                    "error": state.error,
                    "finish_reason": state.finish_reason,
                    "attempts": state.attempts,
                    "variation": {
                        "layout": variation.layout,
                        "exaggeration": variation.exaggeration,
                    },
                }
            )
        metadata_url = None
        if job.metadata_path:
            metadata_url = self._blob_url(request, job.job_id, metadata_key(job.job_id))
        return {
            "job_id": job.job_id,
            "status": job.status,
            "created_at": job.created_at.isoformat(),
            "deadline": job.deadline.isoformat() if job.deadline else None,
            "request": job.request.model_dump(),
            "sketches": sketches,
            "metadata_url": metadata_url,
            "parent": job.parent.model_dump() if job.parent else None,
            "regenerated_from": job.regenerated_from,
        }

    def _read_json(self, request: Request) -> Any:
        if request.mimetype != "application/json":
            raise RequestError(
                415, "unsupported_media_type", "send Content-Type: application/json", "Content-Type"
            )
        if (request.content_length or 0) > self.max_body_bytes:
            raise RequestError(
                413, "payload_too_large", f"body is over {self.max_body_bytes} bytes", "body"
            )
        raw = request.stream.read(self.max_body_bytes + 1)
        if len(raw) > self.max_body_bytes:
            raise RequestError(
                413, "payload_too_large", f"body is over {self.max_body_bytes} bytes", "body"
            )
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise RequestError(400, "invalid_json", "body is not valid JSON", "body") from None

    # -- endpoints -------------------------------------------------------------------------

    def _health(self, request: Request) -> Response:
        return json_response({"status": "ok"})

    def _create_job(self, request: Request) -> Response:
        uid = self._uid(request)
        body = self._read_json(request)
        if not isinstance(body, dict):
            raise RequestError(400, "invalid_json", "body must be a JSON object", "body")
        try:
            parsed = CreateJobBody.model_validate(body)
        except ValidationError as error:
            raise _validation_error(error) from None
        key = self._idempotency_key(request)
        job_request = JobRequest(**parsed.model_dump(exclude={"deadline_s"}))
        job, _ = self._service().submission.submit_job(
            uid, job_request, idempotency_key=key, deadline_s=parsed.deadline_s
        )
        return self._accepted(request, job)

    def _idempotency_key(self, request: Request) -> str | None:
        key = request.headers.get("Idempotency-Key")
        if key is not None and not _IDEMPOTENCY_KEY.fullmatch(key):
            raise RequestError(
                400,
                "invalid_argument",
                "Idempotency-Key must be 1-200 visible ASCII characters",
                "Idempotency-Key",
            )
        return key

    def _refine(self, request: Request, job_id: str, index: int) -> Response:
        uid = self._uid(request)
        body = self._read_json(request)
        if not isinstance(body, dict):
            raise RequestError(400, "invalid_json", "body must be a JSON object", "body")
        try:
            parsed = RefineBody.model_validate(body)
        except ValidationError as error:
            raise _validation_error(error) from None
        job, _ = self._service().submission.refine_sketch(
            uid,
            self._job_id(job_id),
            index,
            parsed.instruction,
            num_images=parsed.num_images,
            idempotency_key=self._idempotency_key(request),
        )
        return self._accepted(request, job)

    def _accepted(self, request: Request, job: JobRecord) -> Response:
        base = self._base(request)
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

    def _get_job(self, request: Request, job_id: str) -> Response:
        uid = self._uid(request)
        job = self._service().submission.get_job(uid, self._job_id(job_id))
        return json_response(self.job_view(request, job))

    def _cancel_job(self, request: Request, job_id: str) -> Response:
        uid = self._uid(request)
        job = self._service().submission.cancel_job(uid, self._job_id(job_id))
        return json_response(self.job_view(request, job), 202)

    def _get_file(self, request: Request, job_id: str, name: str) -> Response:
        uid = self._uid(request)
        data = self._service().submission.read_blob(uid, self._job_id(job_id), name)
        mimetype = "application/json" if name.endswith(".json") else "image/png"
        return Response(data, mimetype=mimetype, headers={"Cache-Control": "private, max-age=300"})

    def _events(self, request: Request, job_id: str) -> Response:
        from sketchgen.api.sse import event_stream, parse_last_event_id

        uid = self._uid(request)
        job = self._service().submission.get_job(uid, self._job_id(job_id))
        last_id = parse_last_event_id(request.headers.get("Last-Event-ID"))
        if job.is_final and last_id > job.event_seq:
            # The client already has `done`; 204 tells an EventSource to stop reconnecting.
            return Response(status=204)
        body = event_stream(
            self._service().jobs,
            job.job_id,
            last_id,
            url_for=lambda key: self._blob_url(request, job.job_id, key),
            heartbeat_s=self.heartbeat_s,
        )
        return Response(
            body,
            mimetype="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            direct_passthrough=True,
        )

    def _list_styles(self, request: Request) -> Response:
        self._uid(request)
        styles = self._service().styles.list_styles()
        return json_response(
            {
                "styles": [
                    {
                        "id": s.id,
                        "name": s.name,
                        "description": s.description,
                        "references": len(s.references),
                    }
                    for s in styles
                ]
            }
        )

    def _get_style(self, request: Request, style_id: str) -> Response:
        self._uid(request)
        try:
            style = self._service().styles.get_style(style_id)
        except UnknownStyleError as error:
            raise RequestError(404, "not_found", str(error), "style_id") from None
        return json_response(
            {
                "id": style.id,
                "name": style.name,
                "description": style.description,
                "visual_rules": list(style.visual_rules),
                "references": [
                    {"sha256": r.sha256, "tags": list(r.tags), "description": r.description}
                    for r in style.references
                ],
            }
        )

    def _style_reference(self, request: Request, style_id: str, sha256: str) -> Response:
        # Thumbnails are the style's own published references, not user data: no auth, so a
        # plain <img> can show them.
        try:
            style = self._service().styles.get_style(style_id)
        except UnknownStyleError as error:
            raise RequestError(404, "not_found", str(error), "style_id") from None
        for reference in style.references:
            if reference.sha256 == sha256:
                data = self._service().styles.reference_bytes(reference)
                return Response(
                    data,
                    mimetype=reference.mime_type,
                    headers={"Cache-Control": "public, max-age=86400, immutable"},
                )
        raise RequestError(404, "not_found", f"no reference {sha256!r} in style {style_id!r}")

    def _archive(self, request: Request, job_id: str) -> Response:
        import io
        import zipfile

        uid = self._uid(request)
        service = self._service()
        job = service.submission.get_job(uid, self._job_id(job_id))
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:  # PNGs don't deflate
            for index, state in sorted(job.sketches.items(), key=lambda kv: int(kv[0])):
                if state.status == "ok":
                    archive.writestr(
                        f"{job_id}/{sketch_file(int(index))}",
                        service.blobs.get(sketch_key(job_id, int(index))),
                    )
            if job.metadata_path:
                archive.writestr(
                    f"{job_id}/{METADATA_FILE}", service.blobs.get(metadata_key(job_id))
                )
        return Response(
            buffer.getvalue(),
            mimetype="application/zip",
            headers={"Content-Disposition": f'attachment; filename="{job_id}.zip"'},
        )

    def _web_index(self, request: Request) -> Response:
        return self._web_static(request, "index.html")

    def _web_static(self, request: Request, name: str) -> Response:
        from importlib import resources

        kinds = {
            ".html": "text/html",
            ".js": "text/javascript",
            ".css": "text/css",
            ".svg": "image/svg+xml",
        }
        suffix = name[name.rfind(".") :] if "." in name else ""
        if "/" in name or "\\" in name or name.startswith(".") or suffix not in kinds:
            raise RequestError(404, "not_found", f"no file {name!r}")
        page = resources.files("sketchgen.web").joinpath(name)
        if not page.is_file():
            raise RequestError(404, "not_found", f"no file {name!r}")
        return Response(page.read_bytes(), mimetype=kinds[suffix], headers=self.page_headers)

    def _web_config(self, request: Request) -> Response:
        return json_response(self.web_config)
