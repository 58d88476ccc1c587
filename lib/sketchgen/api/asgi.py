"""The API on an ASGI server: the stream function on functions-framework's async stack.

The routes stay the WSGI ones (:class:`sketchgen.api.http.Api`: auth, the one error mapping,
CORS, ``Last-Event-ID``); what changes is who holds a client while its stream is open. Here
the request's short blocking part (verify the token, read the job) runs in the loop's executor,
and an event stream (:class:`sketchgen.api.sse.EventStream`, or any body that can be
async-iterated) is then async-iterated on the loop: a client costs a task and a queue on its
job's one listener, not a thread (docs/decisions/0014-async-stream-function.md).
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterable, MutableMapping
from typing import Any

from starlette.requests import Request as AsgiRequest
from starlette.responses import Response as AsgiResponse
from starlette.responses import StreamingResponse
from werkzeug.wrappers import Request

from sketchgen.api.http import Api

__all__ = ["serve"]


async def serve(api: Api, request: AsgiRequest) -> AsgiResponse:
    """Answer ``request`` with ``api``; an event stream is streamed on the loop."""
    body = await request.body() if request.method not in {"GET", "HEAD", "OPTIONS"} else b""
    answer = await asyncio.to_thread(api.handle, Request(_environ(request.scope, body)))
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers]
    content = answer.response
    response: AsgiResponse
    if isinstance(content, AsyncIterable):  # an EventStream, or a wrapper that keeps __aiter__
        response = _Stream(content, status_code=answer.status_code)
    elif answer.is_streamed:
        # A sync stream (a wrapper without __aiter__): correct, but Starlette iterates it in
        # its thread pool, a thread per open stream again. Never read it here on the loop.
        response = _Stream(content, status_code=answer.status_code)
    else:
        response = AsgiResponse(answer.get_data(), status_code=answer.status_code)
    response.raw_headers = headers  # werkzeug's as they are: Content-Type, -Length, CORS
    return response


class _Stream(StreamingResponse):
    """A streamed body whose ``close()`` is called when the response ends, however it ends
    (finished, failed, the client gone before or during the stream), as a WSGI server does:
    a per-user stream slot (:mod:`sketchgen.api.stream_slots`) is given back by it."""

    def __init__(self, content: Any, status_code: int) -> None:
        super().__init__(content, status_code=status_code)
        self._content = content

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            close = getattr(self._content, "close", None)
            if close is not None:
                close()  # quick (a slot count), and must not be skipped by a second cancel


def _environ(scope: MutableMapping[str, Any], body: bytes) -> dict[str, Any]:
    """The WSGI environ of an ASGI HTTP scope (what the routes read: method, path, query,
    headers, host, scheme, root path)."""
    server = scope.get("server") or ("localhost", 80)
    client = scope.get("client") or ("", 0)
    raw_path: bytes | None = scope.get("raw_path")
    path = raw_path.split(b"?", 1)[0].decode("latin-1") if raw_path else scope["path"]
    root = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": root,
        "PATH_INFO": path,
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1] or 80),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "REMOTE_ADDR": str(client[0]),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for raw_name, raw_value in scope.get("headers", []):
        name = raw_name.decode("latin-1").upper().replace("-", "_")
        value = raw_value.decode("latin-1")
        if name == "CONTENT_TYPE" or name == "CONTENT_LENGTH":
            environ[name] = value
            continue
        key = f"HTTP_{name}"
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ
