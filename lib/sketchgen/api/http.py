"""The public HTTP API, as one WSGI app over the capabilities in :mod:`sketchgen.services`.

Cloud functions hand their Flask request to :meth:`Api.handle`; ``sketchgen serve`` and
``make dev`` serve the same routes. Each capability's routes are in a ``routes_*`` module;
what they share (reading requests, the one error mapping, CORS) is in :mod:`sketchgen.api.core`.
Errors are always ``{"error": {code, message, field}}``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import IO, Any, cast

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from sketchgen.api.app_check import AppCheckVerifier
from sketchgen.api.auth import Authenticator
from sketchgen.api.core import (
    BoundedBody,
    RouteGroup,
    Routing,
    body_kind,
    cors,
    error_response,
    json_response,
    origins,
)
from sketchgen.api.routes_events import EventRoutes
from sketchgen.api.routes_files import FileRoutes
from sketchgen.api.routes_jobs import JobRoutes
from sketchgen.api.routes_studio import StudioRoutes
from sketchgen.api.routes_styles import StyleRoutes
from sketchgen.api.routes_web import WebRoutes
from sketchgen.api.stream_slots import StreamSlots
from sketchgen.errors import RequestError, SketchgenError
from sketchgen.metadata import JOB_ID
from sketchgen.services import SketchService
from sketchgen.styles.upload import MAX_UPLOAD_BYTES

__all__ = ["JOB_ID", "Api", "error_response"]


class _Health:
    """``/healthz``: 200 once the instance is ready (its clients connected), 503 until then."""

    def __init__(self, ready: Callable[[float], bool]) -> None:
        self._ready = ready

    def rules(self) -> list[Rule]:
        return [Rule("/healthz", endpoint=self.health, methods=["GET"])]

    def health(self, request: Request) -> Response:
        if not self._ready(1.0):  # a probe polls: wait a little rather than answer late
            return json_response({"status": "starting"}, status=503)
        return json_response({"status": "ok"})


class Api:
    """Routes → service calls. ``routes`` picks the subset a function serves: ``generate``
    serves jobs, blobs, styles, studio, health and web; ``stream`` serves events and health."""

    ALL_ROUTES = frozenset({"jobs", "events", "styles", "health", "blobs", "web", "studio"})

    def __init__(
        self,
        service: Callable[[], SketchService],
        authenticator: Callable[[], Authenticator],
        *,
        routes: Iterable[str] = ALL_ROUTES,
        events_base_url: str | None = None,
        cors_origins: Iterable[str] = (),
        max_body_bytes: int = 16 * 1024,
        max_upload_bytes: int = MAX_UPLOAD_BYTES,
        signed_url_ttl_s: int = 900,
        heartbeat_s: float = 15.0,
        web_config: dict[str, Any] | None = None,
        connect_origins: Iterable[str] = (),
        user_streams: int = 5,
        app_check: AppCheckVerifier | None = None,
        ready: Callable[[float], bool] = lambda timeout_s: True,
    ) -> None:
        routing = Routing(
            service,
            authenticator,
            max_body_bytes=max_body_bytes,
            max_upload_bytes=max_upload_bytes,
            signed_url_ttl_s=signed_url_ttl_s,
            app_check=app_check,
        )
        self.routing = routing
        self.cors_origins = origins(cors_origins)
        self.app_check = app_check  # warmed with the instance (bootstrap.warm)
        self.authenticator = authenticator
        # Built only when served: a function builds the groups its routes name, nothing else.
        groups: dict[str, Callable[[], RouteGroup]] = {
            "health": lambda: _Health(ready),
            "jobs": lambda: JobRoutes(routing, events_base_url=events_base_url),
            "blobs": lambda: FileRoutes(routing),
            "web": lambda: WebRoutes(web_config=web_config, connect_origins=connect_origins),
            "events": lambda: EventRoutes(
                routing, heartbeat_s=heartbeat_s, streams=StreamSlots(user_streams)
            ),
            "styles": lambda: StyleRoutes(routing),
            "studio": lambda: StudioRoutes(routing),
        }
        enabled = set(routes)
        self.url_map = Map(
            [rule for name, group in groups.items() if name in enabled for rule in group().rules()],
            strict_slashes=False,
        )

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        return self.handle(Request(environ))(environ, start_response)

    def handle(self, request: Request) -> Response:
        # Every read of the body from here on (the route's, the server's drain afterwards)
        # goes through its route's limit; until a route is matched that limit is 0.
        body = BoundedBody(request.stream, declared=request.content_length)
        request.stream = cast(IO[bytes], body)  # a RawIOBase: read(), readinto(), readline()
        try:
            response = self._answer(request, body)
        finally:
            body.stop()
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if response.mimetype == "application/json":
            # Job views, usage and style views carry signed URLs and per-user data.
            response.headers.setdefault("Cache-Control", "no-store")
        if _is_https(request):
            response.headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
        return cors(request, response, self.cors_origins)

    def _answer(self, request: Request, body: BoundedBody) -> Response:
        if request.method == "OPTIONS":
            return Response(status=204)
        try:
            endpoint, args = self.url_map.bind_to_environ(request.environ).match()
            body.limit = self.routing.body_limit(body_kind(endpoint))
            response: Response = endpoint(request, **args)
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
        return response


def _is_https(request: Request) -> bool:
    """Served over HTTPS, here or at the front end that forwarded it (Cloud Run and the load
    balancer say so in X-Forwarded-Proto). Spoofing it only adds a header browsers ignore on
    plain HTTP."""
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return request.scheme == "https" or forwarded == "https"
