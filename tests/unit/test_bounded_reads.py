"""Bounded reads (issue 23, item 4), counted byte by byte at the WSGI/ASGI edge: a body is read
only after the caller is allowed, never past its route's limit, and never by a server's drain
after the answer. The same requests over real sockets, on both stacks, are in
tests/functions/test_hostile_input.py; the memory they cost is in bench/bench_edge.py."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import functions_framework
import pytest
from starlette.requests import Request as AsgiRequest
from werkzeug.test import Client, EnvironBuilder
from werkzeug.wrappers import Response

from sketchgen.api.asgi import serve
from sketchgen.api.core import FORM_OVERHEAD
from sketchgen.api.http import Api
from sketchgen.bootstrap import build_api, build_service
from sketchgen.settings import Settings, get_settings
from sketchgen.styles.upload import MAX_UPLOAD_BYTES
from tests.helpers.responses import json_of

ALICE = {"Authorization": "Bearer dev:alice"}
MIB = 1024 * 1024
HUGE = 64 * MIB
JSON_LIMIT = 16 * 1024
REPO = Path(__file__).resolve().parents[2]


class CountingBody(io.RawIOBase):
    """An endless body (``[[[[…``) that counts what was taken from it."""

    def __init__(self) -> None:
        super().__init__()
        self.taken = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        size = len(buffer)
        buffer[:size] = b"[" * size
        self.taken += size
        return size


@pytest.fixture
def api(tmp_path: Path) -> Api:
    settings = Settings(
        job_store="memory://", blob_url=f"file://{tmp_path / 'blobs'}", offline=True, auth="dev"
    )
    service = build_service(settings)
    return build_api(lambda: service, settings)


def _call(app: Any, method: str, path: str, headers: dict[str, str], body: CountingBody) -> Any:
    """``app`` with ``body`` as the raw input: declared when headers give a Content-Length,
    else as a chunked body (``wsgi.input_terminated``, as werkzeug's and gunicorn's servers
    mark one)."""
    environ = EnvironBuilder(method=method, path=path, headers=headers).get_environ()
    environ["wsgi.input"] = body
    environ.pop("CONTENT_LENGTH", None)
    if "Content-Length" in headers:
        environ["CONTENT_LENGTH"] = headers["Content-Length"]
    else:
        environ["wsgi.input_terminated"] = True
    environ["CONTENT_TYPE"] = headers.get("Content-Type", "application/json")
    return Response.from_app(app, environ)


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_an_unauthenticated_body_is_never_read(api: Api, declared: bool) -> None:
    body = CountingBody()
    headers = {"Content-Length": str(HUGE)} if declared else {}
    for path in ("/v1/jobs", "/v1/styles", "/v1/jobs/20260101_000000-abcdef/cancel"):
        answer = _call(api, "POST", path, headers, body)
        assert answer.status_code == 401
    assert body.taken == 0


def test_a_declared_length_over_the_limit_is_refused_before_reading(api: Api) -> None:
    body = CountingBody()
    for path in ("/v1/jobs", "/v1/styles"):
        answer = _call(api, "POST", path, {**ALICE, "Content-Length": str(HUGE)}, body)
        assert answer.status_code == 413
        error = json_of(answer)["error"]
        assert error["code"] == "payload_too_large" and error["field"] == "body"
        assert f"limit of {JSON_LIMIT} bytes" in error["message"]
    assert body.taken == 0


def test_a_chunked_body_is_counted_and_stopped_at_the_limit(api: Api) -> None:
    body = CountingBody()
    answer = _call(api, "POST", "/v1/jobs", ALICE, body)
    assert answer.status_code == 413
    assert "limit of 16384 bytes" in json_of(answer)["error"]["message"]
    assert body.taken <= JSON_LIMIT + 1


def test_routes_without_a_body_read_none_of_it(api: Api) -> None:
    body = CountingBody()
    for method, path in [
        ("POST", "/v1/jobs/20260101_000000-abcdef/cancel"),  # allowed, reads no body
        ("DELETE", "/v1/styles/u-aaaaaaaaaaaaaaaaaaaa"),
        ("POST", "/nowhere"),
        ("PUT", "/v1/jobs"),
    ]:
        answer = _call(api, method, path, {**ALICE, "Content-Length": str(HUGE)}, body)
        assert answer.status_code in {404, 405}, (path, answer.status_code)
    assert body.taken == 0


def test_an_upload_over_its_limit_is_refused_before_reading(api: Api) -> None:
    style = json_of(Client(api).post("/v1/styles", json={"name": "ink"}, headers=ALICE))["style_id"]
    body = CountingBody()
    declared = MAX_UPLOAD_BYTES + FORM_OVERHEAD + 1
    headers = {
        **ALICE,
        "Content-Length": str(declared),
        "Content-Type": "multipart/form-data; boundary=x",
    }
    answer = _call(api, "POST", f"/v1/styles/{style}/references", headers, body)
    assert answer.status_code == 413 and json_of(answer)["error"]["code"] == "image_too_large"
    assert body.taken == 0
    chunked = {**ALICE, "Content-Type": "multipart/form-data; boundary=x"}
    answer = _call(api, "POST", f"/v1/styles/{style}/references", chunked, body)
    assert answer.status_code == 413
    assert body.taken <= MAX_UPLOAD_BYTES + FORM_OVERHEAD + 1


# -- the functions stack: functions-framework drains every request after its answer -----------


@pytest.fixture
def local_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("SKETCHGEN_AUTH", "dev")
    monkeypatch.setenv("SKETCHGEN_JOB_STORE", f"sqlite:///{tmp_path / 'jobs.sqlite3'}")
    monkeypatch.setenv("SKETCHGEN_BLOB_URL", f"file://{tmp_path / 'blobs'}")
    monkeypatch.setenv("SKETCHGEN_OFFLINE", "1")
    monkeypatch.delenv("SKETCHGEN_SKETCH_TOPIC", raising=False)
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


@pytest.mark.usefixtures("local_env")
@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_the_generate_function_reads_nothing_it_refuses_even_after_answering(
    declared: bool,
) -> None:
    """functions-framework calls ``request.get_data()`` after every answer (to drain the
    socket): it used to buffer the whole 64 MiB an unauthenticated caller sent."""
    app = functions_framework.create_app("generate", str(REPO / "functions/generate/main.py"))
    for headers, status in [({}, 401), (ALICE, 413)]:
        body = CountingBody()
        length = {"Content-Length": str(HUGE)} if declared else {}
        answer = _call(app.wsgi_app, "POST", "/v1/jobs", {**headers, **length}, body)
        assert answer.status_code == status
        if status == 401 or declared:
            assert body.taken == 0
        else:
            assert body.taken <= JSON_LIMIT + 1


# -- the ASGI stack (the stream function) -----------------------------------------------------


def _asgi(api: Api, method: str, path: str, headers: dict[str, str]) -> tuple[int, int, bytes]:
    """``serve`` on a real Starlette request whose client sends an endless body: (status,
    chunks received from the client, answer body)."""
    received = 0

    async def receive() -> dict[str, Any]:
        nonlocal received
        received += 1
        return {"type": "http.request", "body": b"[" * 65536, "more_body": True}

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "server": ("127.0.0.1", 8080),
        "client": ("127.0.0.1", 5000),
        "scheme": "http",
        "http_version": "1.1",
        "root_path": "",
    }

    async def run() -> Any:
        return await serve(api, AsgiRequest(scope, receive))

    answer = asyncio.run(run())
    return answer.status_code, received, bytes(answer.body)


def test_the_asgi_stack_reads_no_body_before_routing(api: Api) -> None:
    """It used to ``await request.body()`` for every non-GET request before routing."""
    huge = {"Content-Length": str(HUGE), "Content-Type": "application/json"}
    for method, path, headers, status in [
        ("POST", "/v1/jobs/20260101_000000-abcdef/events", huge, 405),
        ("POST", "/v1/jobs", huge, 401),
        ("POST", "/v1/jobs", {**huge, **ALICE}, 413),
    ]:
        code, received, _ = _asgi(api, method, path, headers)
        assert (code, received) == (status, 0), path
    code, received, answer = _asgi(
        api, "POST", "/v1/jobs", {**ALICE, "Content-Type": "application/json"}
    )
    assert code == 413 and b"limit of 16384 bytes" in answer
    assert received <= JSON_LIMIT // 65536 + 1
