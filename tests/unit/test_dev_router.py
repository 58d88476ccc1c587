"""``make dev``'s front (dev/router.py) streams request bodies through, as Google's front end
does, instead of holding them: the function alone decides how much of a body to read."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from dev.processes import free_port
from dev.router import Router, serve_router

CHUNK = 64 * 1024


class Upstream:
    """A function that reads its body and says, as soon as the first chunk is in, that it
    has one."""

    def __init__(self) -> None:
        self.first_chunk = threading.Event()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        total = 0
        while chunk := request.stream.read(CHUNK):
            total += len(chunk)
            self.first_chunk.set()
        return Response(str(total), mimetype="text/plain")(environ, start_response)


@pytest.fixture
def front() -> Iterator[tuple[int, Upstream]]:
    upstream = Upstream()
    upstream_port, front_port = free_port(), free_port()
    server = make_server("127.0.0.1", upstream_port, upstream, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    router, _ = serve_router(Router(default=f"127.0.0.1:{upstream_port}"), "127.0.0.1", front_port)
    yield front_port, upstream
    router.shutdown()
    server.shutdown()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_the_body_reaches_the_function_while_the_client_is_still_sending(
    front: tuple[int, Upstream], chunked: bool
) -> None:
    port, upstream = front
    blocks = 8
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {blocks * CHUNK}"
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(f"POST /x HTTP/1.1\r\nHost: a\r\n{framing}\r\n\r\n".encode())

        def send(block: bytes) -> None:
            sock.sendall(f"{len(block):x}\r\n".encode() + block + b"\r\n" if chunked else block)

        send(b"a" * CHUNK)
        # A router that held the body would forward nothing until all of it had arrived.
        assert upstream.first_chunk.wait(timeout=20)
        for _ in range(blocks - 1):
            send(b"a" * CHUNK)
        if chunked:
            sock.sendall(b"0\r\n\r\n")
        answer = b""
        while not answer.endswith(str(blocks * CHUNK).encode()):
            data = sock.recv(4096)
            assert data, answer
            answer += data
    assert answer.startswith(b"HTTP/1.1 200")
