"""The web page: ``/``, its assets and ``/config.json`` (how the page signs in)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from sketchgen.api.core import json_response
from sketchgen.errors import RequestError

__all__ = ["FIREBASE_AUTH_ORIGINS", "WebRoutes", "page_headers"]

# What the bundled Firebase Auth SDK (firebase-sdk.js) calls to sign in and refresh tokens.
FIREBASE_AUTH_ORIGINS = (
    "https://identitytoolkit.googleapis.com",
    "https://securetoken.googleapis.com",
)

_KINDS = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
}


def page_headers(connect_origins: Iterable[str] = ()) -> dict[str, str]:
    """The page loads only its own assets (the Firebase SDK is bundled with them); it talks to
    this origin, Firebase sign-in, and the origins the deployment names (the stream function,
    the blob store's signed-URL host, local emulators), and to nothing else; nobody may
    frame it."""
    connect = " ".join(["'self'", *FIREBASE_AUTH_ORIGINS, *sorted(set(connect_origins))])
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


class WebRoutes:
    def __init__(
        self, *, web_config: dict[str, Any] | None = None, connect_origins: Iterable[str] = ()
    ) -> None:
        self.page_headers = page_headers(connect_origins)
        self.web_config = web_config or {"auth": "firebase"}

    def rules(self) -> list[Rule]:
        return [
            Rule("/", endpoint=self.index, methods=["GET"]),
            # Not /static/: functions-framework is a Flask app and Flask's own static
            # route owns that path on the deployed function.
            Rule("/assets/<name>", endpoint=self.asset, methods=["GET"]),
            Rule("/config.json", endpoint=self.config, methods=["GET"]),
            # Browsers ask for /favicon.ico whatever the page links; every current one
            # takes an SVG there (served by its media type, not its name).
            Rule("/favicon.ico", endpoint=self.favicon, methods=["GET"]),
        ]

    def favicon(self, request: Request) -> Response:
        return self.asset(request, "favicon.svg")

    def index(self, request: Request) -> Response:
        return self.asset(request, "index.html")

    def asset(self, request: Request, name: str) -> Response:
        from importlib import resources

        suffix = name[name.rfind(".") :] if "." in name else ""
        if "/" in name or "\\" in name or name.startswith(".") or suffix not in _KINDS:
            raise RequestError(404, "not_found", f"no file {name!r}")
        page = resources.files("sketchgen.web").joinpath(name)
        if not page.is_file():
            raise RequestError(404, "not_found", f"no file {name!r}")
        return Response(page.read_bytes(), mimetype=_KINDS[suffix], headers=self.page_headers)

    def config(self, request: Request) -> Response:
        return json_response(self.web_config)
