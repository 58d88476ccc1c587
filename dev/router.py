"""A small streaming reverse proxy: one public origin in front of the local functions.

In the cloud the API and the event stream are separate function URLs; locally ``make dev``
puts them under one host and port with the same paths. Responses are relayed as they arrive,
so Server-Sent Events are not buffered (werkzeug's ``ProxyMiddleware`` reads fixed-size
chunks, which holds back a short event until 16 KiB have come, and routes by prefix only).

The proxy passes every header once, keeps hop-by-hop headers to itself, and forwards every path
percent-encoded (a control character in it must reach the function, which answers 4xx, not
break the proxy's request line).
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import threading
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import quote

from werkzeug.datastructures import Headers
from werkzeug.http import is_hop_by_hop_header
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

__all__ = ["Router", "serve_router"]

# Set by this server itself: relayed too, they would be sent twice.
_OWN = frozenset({"server", "date"})
# Characters a path keeps as they are when it is forwarded (RFC 3986 pchar plus "/").
_PATH_SAFE = "/:@!$&'()*+,;=-._~"


def _is_chunked(request: Request) -> bool:
    return "chunked" in request.headers.get("Transfer-Encoding", "").lower()


def _error(status: int, code: str, message: str) -> Response:
    body = json.dumps({"error": {"code": code, "message": message, "field": None}})
    return Response(body, status=status, mimetype="application/json")


class Router:
    """Routes by path: the first pattern that matches picks the upstream ``host:port``.

    With ``prefixes`` it is a cloudfunctions.net front instead: ``/NAME/rest`` goes to NAME's
    upstream as ``/rest`` with ``X-Forwarded-Prefix: /NAME`` (the deployed URL layout that the
    page must work under); any other path is a 404. ``cors_any_origin`` adds what the outputs
    bucket's CORS rule adds in the cloud (GET from any origin; the URLs carry their own
    signature), for the Cloud Storage emulator, which has no CORS of its own.
    """

    def __init__(
        self,
        routes: Iterable[tuple[str, str]] = (),
        default: str | None = None,
        *,
        prefixes: dict[str, str] | None = None,
        cors_any_origin: bool = False,
    ) -> None:
        self.cors_any_origin = cors_any_origin
        self.routes = [(re.compile(pattern), upstream) for pattern, upstream in routes]
        self.default = default
        self.prefixes = {"/" + k.strip("/"): v for k, v in (prefixes or {}).items()}

    def upstream_for(self, path: str) -> tuple[str | None, str, str]:
        """(upstream, path to send, prefix removed)."""
        for prefix, upstream in self.prefixes.items():
            if path == prefix or path.startswith(prefix + "/"):
                return upstream, path[len(prefix) :] or "/", prefix
        found = next((up for pattern, up in self.routes if pattern.match(path)), self.default)
        return found, path, ""

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        # Decoded here and quoted again below, so "%00" reaches the function as sent.
        upstream, path, prefix = self.upstream_for(request.path)
        if upstream is None:
            return _error(404, "not_found", "no function here")(environ, start_response)
        host, port = upstream.rsplit(":", 1)
        target = quote(path, safe=_PATH_SAFE)
        if request.query_string:
            target += "?" + request.query_string.decode("latin-1")
        headers = {k: v for k, v in request.headers.items() if not is_hop_by_hop_header(k)}
        # The body is streamed through, never held here, as Google's front end does: the
        # function alone decides how much of it to read (a declared length is passed on; a
        # chunked body is chunked again by http.client).
        body = request.stream if request.content_length or _is_chunked(request) else None
        if request.content_length:
            headers["Content-Length"] = str(request.content_length)
        else:
            headers.pop("Content-Length", None)
        if prefix:
            headers["X-Forwarded-Prefix"] = prefix
        connection = http.client.HTTPConnection(host, int(port), timeout=3600)
        try:
            connection.request(request.method, target, body=body, headers=headers)
            upstream = connection.getresponse()
        except (OSError, http.client.HTTPException):
            connection.close()
            response = _error(502, "unavailable", "upstream is down")
            return response(environ, start_response)

        def relay() -> Iterator[bytes]:
            try:
                while chunk := upstream.read1(65536):
                    yield chunk
            finally:
                connection.close()

        relayed = Headers(
            [
                (k, v)
                for k, v in upstream.getheaders()
                if not is_hop_by_hop_header(k) and k.lower() not in _OWN
            ]
        )
        if upstream.getheader("Transfer-Encoding"):
            relayed.remove("Content-Length")  # streamed: the server closes or chunks again
        if self.cors_any_origin and request.method == "GET":
            relayed.set("Access-Control-Allow-Origin", "*")
        # Headers handed over whole: Response would otherwise add its own Content-Type.
        response = Response(relay(), status=upstream.status, headers=relayed)
        response.direct_passthrough = True
        return response(environ, start_response)


def serve_router(router: Router, host: str, port: int) -> tuple[BaseWSGIServer, threading.Thread]:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per proxied request
    server = make_server(host, port, router, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="dev-router")
    thread.start()
    return server, thread
