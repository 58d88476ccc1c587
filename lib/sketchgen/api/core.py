"""What every route shares: reading a request (JSON body, caller, ids, public base URL),
answering it (JSON, the one error mapping), and CORS. The routes live in ``routes_*.py``;
:mod:`sketchgen.api.http` puts them together.
"""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Callable, Iterable
from typing import IO, Any, Literal, Protocol, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, ValidationError
from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from sketchgen import bounded_json
from sketchgen.api.app_check import APP_CHECK_HEADER, AppCheckVerifier
from sketchgen.api.auth import Authenticator
from sketchgen.errors import RequestError, SketchgenError, first_problem
from sketchgen.logs import get_logger
from sketchgen.metadata import JOB_ID
from sketchgen.services import SketchService
from sketchgen.styles.upload import MAX_UPLOAD_BYTES

__all__ = [
    "FORM_OVERHEAD",
    "BodyKind",
    "BoundedBody",
    "RouteGroup",
    "Routing",
    "base_url",
    "checked_job_id",
    "cors",
    "error_response",
    "idempotency_key",
    "json_response",
    "origins",
    "read_json",
    "reads_body",
]

log = get_logger(__name__)

_URL_CACHE_SIZE = 4096
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")
Body = TypeVar("Body", bound=BaseModel)
Endpoint = TypeVar("Endpoint", bound=Callable[..., Response])
# What a route reads: a JSON document, or a multipart upload (an image and its fields).
BodyKind = Literal["json", "upload"]
_BODY_KIND = "_sketchgen_body_kind"
# What a multipart upload may add around the image: the other fields and the part headers.
FORM_OVERHEAD = 64 * 1024


def reads_body(kind: BodyKind) -> Callable[[Endpoint], Endpoint]:
    """Marks an endpoint as one that reads a body of ``kind``; its limit is
    :meth:`Routing.body_limit`. An unmarked endpoint reads none (its limit is 0)."""

    def mark(endpoint: Endpoint) -> Endpoint:
        setattr(endpoint, _BODY_KIND, kind)
        return endpoint

    return mark


def body_kind(endpoint: object) -> BodyKind | None:
    kind: BodyKind | None = getattr(endpoint, _BODY_KIND, None)
    return kind


def too_large(limit: int) -> RequestError:
    return RequestError(
        413, "payload_too_large", f"body is over this route's limit of {limit} bytes", "body"
    )


class BoundedBody(io.RawIOBase):
    """A request body that is never read past its route's limit, whoever reads it.

    Installed as the request's ``stream`` before routing (:meth:`sketchgen.api.http.Api.handle`)
    so every reader goes through it: ``read_json``, werkzeug's multipart parser, and the
    servers' own drains after the response (functions-framework calls ``request.get_data()``
    after every response). A declared ``Content-Length`` over the limit is refused at the
    first read, before a byte is taken; a body without one (chunked) is counted as it streams
    and refused at ``limit + 1`` bytes. The route reads only after it has authenticated the
    caller, so an unauthenticated body is never read at all. After :meth:`stop` (the response
    is made) it reads as empty: what the route did not want, nobody buffers.
    """

    def __init__(self, source: IO[bytes], *, declared: int | None, limit: int = 0) -> None:
        super().__init__()
        self._source = source
        self.declared = declared
        self.limit = limit
        self.received = 0
        self._stopped = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._stopped:
            return 0
        if self.declared is not None and self.declared > self.limit:
            raise too_large(self.limit)
        room = self.limit + 1 - self.received
        if room <= 0:
            raise too_large(self.limit)
        data = self._source.read(min(len(buffer), room))
        self.received += len(data)
        if self.received > self.limit:
            raise too_large(self.limit)
        buffer[: len(data)] = data
        return len(data)

    def stop(self) -> None:
        self._stopped = True


class RouteGroup(Protocol):
    """One capability's routes; a rule's endpoint is the bound method that answers it."""

    def rules(self) -> list[Rule]: ...


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
    headers = {"WWW-Authenticate": "Bearer"} if error.http_status == 401 else {}
    retry_after = getattr(error, "retry_after_s", None)  # LimitError: when to try again
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return json_response(body, error.http_status, headers or None)


def cors(request: Request, response: Response, origins: frozenset[str]) -> Response:
    origin = request.headers.get("Origin")
    if origin and ("*" in origins or origin in origins):
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
        response.headers["Access-Control-Allow-Headers"] = (
            "Authorization, Content-Type, Idempotency-Key, Last-Event-ID, X-Firebase-AppCheck"
        )
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
        response.headers["Access-Control-Expose-Headers"] = "Retry-After"
        response.headers["Access-Control-Max-Age"] = "3600"
    return response


def checked_job_id(value: str) -> str:
    """A path's job id, refused as not found (not as malformed) when it cannot be one."""
    if not JOB_ID.fullmatch(value):
        raise RequestError(404, "not_found", f"no job {value!r}")
    return value


def idempotency_key(request: Request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is not None and not _IDEMPOTENCY_KEY.fullmatch(key):
        raise RequestError(
            400,
            "invalid_argument",
            "Idempotency-Key must be 1-200 visible ASCII characters",
            "Idempotency-Key",
        )
    return key


def base_url(request: Request) -> str:
    # Behind a prefix (a function URL, a proxy that strips it) the proxy says which.
    prefix = request.headers.get("X-Forwarded-Prefix", "").strip("/")
    base = request.host_url.rstrip("/")
    return f"{base}/{quote(prefix)}" if prefix else base


def read_json(request: Request) -> Any:
    """The body as JSON: ``application/json`` only (exactly: werkzeug's ``is_json`` would
    also take ``application/*+json``), read through the request's :class:`BoundedBody` (its
    route's limit), nested at most :data:`sketchgen.bounded_json.MAX_JSON_DEPTH` deep.

    Not werkzeug's ``max_content_length`` + ``get_json``: on the deployed functions the request
    is functions-framework's Flask request, and after every response functions-framework
    drains it (``request.get_data()``); a limit set on it makes that drain raise, and an
    oversized body becomes a 500 instead of this 413.
    """
    if request.mimetype != "application/json":
        raise RequestError(
            415, "unsupported_media_type", "send Content-Type: application/json", "Content-Type"
        )
    if not isinstance(request.stream, BoundedBody):  # a route called outside Api.handle
        raise RuntimeError("the request body is not bounded: serve routes through Api.handle")
    raw = request.stream.read()
    try:
        return bounded_json.loads(raw)
    except bounded_json.JsonTooDeepError as error:
        raise RequestError(400, "invalid_json", f"body: {error}", "body") from None
    except ValueError:  # UnicodeDecodeError included
        raise RequestError(400, "invalid_json", "body is not valid JSON", "body") from None


class Routing:
    """The per-request plumbing the route groups share, over the lazily built service."""

    def __init__(
        self,
        service: Callable[[], SketchService],
        authenticator: Callable[[], Authenticator],
        *,
        max_body_bytes: int,
        signed_url_ttl_s: int,
        app_check: AppCheckVerifier | None = None,
        max_upload_bytes: int = MAX_UPLOAD_BYTES,
    ) -> None:
        self.service = service
        self._authenticator = authenticator
        # SKETCHGEN_APP_CHECK: every authenticated request also proves it comes from our app.
        self._app_check = app_check
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes
        self.signed_url_ttl_s = signed_url_ttl_s
        # (base URL, key) -> (reuse until, URL). Every client of a job asks for the same URLs
        # at the same moment (a thousand streams get `done` together); in the cloud each
        # signature is an IAM signBlob call. A URL is reused for a third of its lifetime.
        self._urls: dict[tuple[str, str], tuple[float, str]] = {}

    def body_limit(self, kind: BodyKind | None) -> int:
        """The one definition of each route's body limit, in bytes."""
        if kind == "json":
            return self.max_body_bytes
        if kind == "upload":
            return self.max_upload_bytes + FORM_OVERHEAD
        return 0

    def uid(self, request: Request) -> str:
        if self._app_check is not None:
            self._app_check.verify(request.headers.get(APP_CHECK_HEADER))
        return self._authenticator().uid_for(request.headers.get("Authorization"))

    def body(self, request: Request, model: type[Body]) -> Body:
        """A JSON object validated as ``model``; the first problem names its field."""
        body = read_json(request)
        if not isinstance(body, dict):
            raise RequestError(400, "invalid_json", "body must be a JSON object", "body")
        try:
            return model.model_validate(body)
        except ValidationError as error:
            field, message = first_problem(error)
            field = field or "body"
            raise RequestError(422, "invalid_argument", f"{field}: {message}", field) from None

    def blob_url(self, request: Request, job_id: str, key: str) -> str:
        """A signed URL where the store makes them, else this API's own file route."""
        url = self.cached_blob_url(request, key)
        if url is None:
            base = base_url(request)
            signed = self.service().blobs.signed_url(key, expires_s=self.signed_url_ttl_s)
            url = signed or f"{base}/v1/jobs/{job_id}/files/{key.rsplit('/', 1)[1]}"
            if len(self._urls) >= _URL_CACHE_SIZE:
                self._urls.clear()
            self._urls[(base, key)] = (time.monotonic() + self.signed_url_ttl_s / 3, url)
        return url

    def cached_blob_url(self, request: Request, key: str) -> str | None:
        """:meth:`blob_url` if it was made recently (no signing, no I/O), else None. The
        caller has already been allowed to read the job the key is under."""
        hit = self._urls.get((base_url(request), key))
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None


def origins(values: Iterable[str]) -> frozenset[str]:
    return frozenset(o.strip() for o in values if o.strip())
