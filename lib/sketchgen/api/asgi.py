"""The API on an ASGI server: the stream function on functions-framework's async stack.

The routes stay the WSGI ones (:class:`sketchgen.api.http.Api`: auth, the one error mapping,
CORS, ``Last-Event-ID``); what changes is who holds a client while its stream is open. Here
the request's short blocking part (verify the token, read the job) runs in the loop's executor,
and an event stream (:class:`sketchgen.api.sse.EventStream`, or any body that can be
async-iterated) is then async-iterated on the loop: a client costs a task and an
``asyncio.Event`` on its job's one listener, not a thread
(docs/decisions/0014-async-stream-function.md).
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
from sketchgen.api.sse import LastChunk

__all__ = ["serve"]


async def serve(api: Api, request: AsgiRequest) -> AsgiResponse:
    """Answer ``request`` with ``api``; an event stream is streamed on the loop.

    The body is not read here: the routes read it, if they want it, through their limit
    (:class:`sketchgen.api.core.BoundedBody`), pulling it from the client as they go."""
    body = _ReceivedBody(request, asyncio.get_running_loop())
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

    async def stream_response(self, send: Any) -> None:
        """Starlette's, except that a :class:`~sketchgen.api.sse.LastChunk` goes out as the
        body's end: one send through the server's stack per client, not the chunk and then
        an empty end (what a job's ``done`` costs at each of its clients at once)."""
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        ended = False
        async for chunk in self.body_iterator:
            if ended:
                continue  # the body said it had ended: nothing after that is sent
            if not isinstance(chunk, bytes | memoryview):
                chunk = chunk.encode(self.charset)
            ended = isinstance(chunk, LastChunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": not ended})
        if not ended:
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            close = getattr(self._content, "close", None)
            if close is not None:
                close()  # quick (a slot count), and must not be skipped by a second cancel


class _ReceivedBody(io.RawIOBase):
    """The ASGI request body as the blocking stream a WSGI route reads, on the route's thread:
    each read asks the loop for the next chunk the client sent. Nothing is buffered ahead of
    the reader (uvicorn itself holds at most its flow-control window)."""

    def __init__(self, request: AsgiRequest, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._chunks = request.stream().__aiter__()
        self._loop = loop
        self._pending = b""
        self._ended = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending and not self._ended:
            future = asyncio.run_coroutine_threadsafe(self._next(), self._loop)
            self._pending = future.result()
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    async def _next(self) -> bytes:
        try:
            return await self._chunks.__anext__()
        except StopAsyncIteration:
            self._ended = True
            return b""


def _environ(scope: MutableMapping[str, Any], body: io.RawIOBase) -> dict[str, Any]:
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
        "wsgi.input": body,
        "wsgi.input_terminated": True,  # a chunked body ends where the client ends it
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
