"""A small streaming reverse proxy: one public origin in front of the local functions.

In the cloud the API and the event stream are separate function URLs; locally ``make dev``
puts them under one host and port with the same paths. Responses are relayed chunk by chunk
so Server-Sent Events arrive as they are sent.
"""

from __future__ import annotations

import http.client
import logging
import re
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

__all__ = ["Router", "serve_router"]

_HOP_BY_HOP = frozenset(
    [
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "content-length",
    ]
)


class Router:
    """Routes by path: the first pattern that matches picks the upstream ``host:port``."""

    def __init__(self, routes: Iterable[tuple[str, str]], default: str) -> None:
        self.routes = [(re.compile(pattern), upstream) for pattern, upstream in routes]
        self.default = default

    def upstream_for(self, path: str) -> str:
        return next((up for pattern, up in self.routes if pattern.match(path)), self.default)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        host, port = self.upstream_for(request.path).rsplit(":", 1)
        connection = http.client.HTTPConnection(host, int(port), timeout=3600)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        body = request.get_data()
        target = request.full_path if request.query_string else request.path
        try:
            connection.request(request.method, target, body=body or None, headers=headers)
            upstream = connection.getresponse()
        except OSError:
            connection.close()
            response = Response(
                b'{"error": {"code": "unavailable", "message": "upstream is down", "field": null}}',
                status=502,
                mimetype="application/json",
            )
            return response(environ, start_response)

        def relay() -> Iterator[bytes]:
            try:
                while chunk := upstream.read1(65536):
                    yield chunk
            finally:
                connection.close()

        response = Response(relay(), status=upstream.status, direct_passthrough=True)
        for name, value in upstream.getheaders():
            if name.lower() not in _HOP_BY_HOP:
                response.headers.add(name, value)
        return response(environ, start_response)


def serve_router(router: Router, host: str, port: int) -> tuple[BaseWSGIServer, threading.Thread]:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per proxied request
    server = make_server(host, port, router, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="dev-router")
    thread.start()
    return server, thread
