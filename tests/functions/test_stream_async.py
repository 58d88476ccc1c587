"""The stream function on functions-framework's ASGI stack, served by uvicorn as deployed:
many clients of one job on one instance share one listener and hold no thread; resume,
heartbeats, refusals and CORS are as on the WSGI path."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from sketchgen import bootstrap
from sketchgen.api.auth import DevAuthenticator
from sketchgen.api.feed import feed_for
from sketchgen.api.http import Api
from sketchgen.jobs import SketchState
from sketchgen.settings import get_settings
from tests.contract.job_store_contract import make_job
from tests.functions.conftest import ALICE, BOB, function_app
from tests.helpers.waiting import wait_until, wait_until_async
from tests.unit.test_job_feed import CountingJobStore

ROUTES = frozenset({"events", "health"})


class Instance:
    """One stream function instance: its store (counting listeners) and its URL."""

    def __init__(
        self, store: CountingJobStore, url: str, service: Any, function: bootstrap.Instance
    ) -> None:
        self.store = store
        self.url = url
        self.service = service
        self.function = function  # the instance the function's main.py holds
        self.serve(user_streams=1000)

    def serve(self, *, user_streams: int) -> None:
        """The function's own API, on a store that counts listeners, quick heartbeats."""
        self.function.serve_api(
            ROUTES,
            Api(
                lambda: self.service,
                DevAuthenticator,
                routes=ROUTES,
                cors_origins=["https://app.example"],
                heartbeat_s=0.3,
                user_streams=user_streams,
            ),
        )

    def job(self, n: int = 3, owner: str = "alice") -> str:
        job = make_job(owner=owner, n=n)
        self.store.create_job(job)
        return job.job_id

    def finish(self, job_id: str, index: int) -> None:
        self.store.claim_sketch(job_id, index, worker="w", lease_s=60)
        state = SketchState(status="ok", path=f"jobs/{job_id}/sketch_{index}.png")
        self.store.finish_sketch(job_id, index, worker="w", state=state)

    def subscribers(self, job_id: str) -> int:
        return feed_for(self.store).async_subscribers(job_id)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def instance(local_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Instance]:
    monkeypatch.setenv("SKETCHGEN_CORS_ORIGINS", "https://app.example")
    get_settings.cache_clear()
    app, function = function_app("stream", "stream")
    store = CountingJobStore()
    service = bootstrap.build_service(function.settings, jobs=store)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, "uvicorn did not start", timeout_s=30, interval_s=0.02)
    try:
        yield Instance(store, f"http://127.0.0.1:{port}", service, function)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _events(text: str) -> list[tuple[int, str, dict[str, Any]]]:
    found = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            found.append((int(fields["id"]), fields["event"], json.loads(fields["data"])))
    return found


async def _listen(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], opened: list[int]
) -> str:
    async with client.stream("GET", url, headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        text = ""
        async for chunk in response.aiter_text():
            if not text:
                opened.append(1)
            text += chunk
        return text


async def _until(predicate: Callable[[], bool], timeout: float = 60) -> None:
    async def holds() -> bool:
        return predicate()

    await wait_until_async(holds, "timed out", timeout_s=timeout)


def test_many_clients_of_one_job_share_one_listener_and_no_threads(instance: Instance) -> None:
    clients = 200
    job_id = instance.job(n=3)
    url = f"{instance.url}/v1/jobs/{job_id}/events"

    async def scenario() -> list[str]:
        limits = httpx.Limits(max_connections=clients + 10)
        async with httpx.AsyncClient(timeout=30, limits=limits) as client:
            opened: list[int] = []
            tasks = [
                asyncio.create_task(_listen(client, url, ALICE, opened)) for _ in range(clients)
            ]
            await _until(lambda: instance.subscribers(job_id) == clients)
            threads = threading.active_count()
            assert instance.store.opened == 1  # one listener for the job, however many clients
            instance.finish(job_id, 0)
            instance.finish(job_id, 1)
            instance.finish(job_id, 2)
            instance.store.complete_job(job_id, metadata_path=None)
            texts = await asyncio.gather(*tasks)
            assert threading.active_count() <= threads + 2  # a client is no thread
            return texts

    texts = asyncio.run(scenario())
    expected = [(1, "sketch"), (2, "sketch"), (3, "sketch"), (4, "done")]
    assert all([(i, e) for i, e, _ in _events(text)] == expected for text in texts)
    assert instance.store.opened == 1
    wait_until(lambda: not instance.store.open_now, "the listener stayed open", timeout_s=30)
    assert instance.store.open_now == 0 and feed_for(instance.store).watching() == 0


def test_resume_with_last_event_id_heartbeats_then_done(instance: Instance) -> None:
    job_id = instance.job(n=3)
    instance.finish(job_id, 0)
    instance.finish(job_id, 1)
    url = f"{instance.url}/v1/jobs/{job_id}/events"

    async def scenario() -> str:
        async with httpx.AsyncClient(timeout=30) as client:
            opened: list[int] = []
            task = asyncio.create_task(
                _listen(client, url, {**ALICE, "Last-Event-ID": "1"}, opened)
            )
            await _until(lambda: instance.subscribers(job_id) == 1)
            # Not synchronisation: an idle second is the condition under test (heartbeats
            # every 0.3 s while nothing happens).
            await asyncio.sleep(1.0)
            instance.finish(job_id, 2)
            instance.store.complete_job(job_id, metadata_path=None)
            return await task

    text = asyncio.run(scenario())
    assert text.startswith("retry: 2000\n\n")
    assert text.count(": heartbeat\n\n") >= 2
    events = _events(text)
    assert [(i, e) for i, e, _ in events] == [(2, "sketch"), (3, "sketch"), (4, "done")]
    assert events[0][2]["index"] == 1 and events[0][2]["url"].endswith("/sketch_1.png")
    assert events[-1][2] == {"status": "done", "metadata_url": None}
    # The client already has `done`: 204 stops an EventSource from reconnecting.
    finished = httpx.get(url, headers={**ALICE, "Last-Event-ID": "4"})
    assert finished.status_code == 204


def test_refusals_and_cors(instance: Instance) -> None:
    job_id = instance.job(n=1)
    url = f"{instance.url}/v1/jobs/{job_id}/events"
    anonymous = httpx.get(url)
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert anonymous.json()["error"]["code"]
    assert httpx.get(url, headers=BOB).status_code == 404  # another user's job
    assert httpx.get(f"{instance.url}/v1/jobs/nope/events", headers=ALICE).status_code == 404
    assert httpx.post(f"{instance.url}/v1/jobs", json={}, headers=ALICE).status_code in {404, 405}
    assert httpx.get(f"{instance.url}/healthz").json() == {"status": "ok"}
    origin = {"Origin": "https://app.example"}
    preflight = httpx.options(url, headers={**origin, "Access-Control-Request-Method": "GET"})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "https://app.example"
    assert "Last-Event-ID" in preflight.headers["access-control-allow-headers"]
    with httpx.stream("GET", url, headers={**ALICE, **origin}, timeout=10) as response:
        assert response.headers["access-control-allow-origin"] == "https://app.example"
        assert response.headers["cache-control"] == "no-cache"
        assert next(response.iter_bytes()).startswith(b"retry:")


def test_a_client_that_leaves_releases_the_listener(instance: Instance) -> None:
    job_id = instance.job(n=1)
    url = f"{instance.url}/v1/jobs/{job_id}/events"
    with httpx.stream("GET", url, headers=ALICE, timeout=10) as response:
        chunks = response.iter_bytes()  # kept: a dropped iterator closes the connection
        assert next(chunks).startswith(b"retry:")
        wait_until(
            lambda: instance.subscribers(job_id) == 1,
            "the stream never subscribed to the job",
            timeout_s=30,
            interval_s=0.02,
        )
    # Noticed at the next write at the latest (a heartbeat): the job has no listener left.
    wait_until(
        lambda: not instance.store.open_now + instance.subscribers(job_id),
        "the job kept a listener",
        timeout_s=30,
    )
    assert instance.store.open_now == 0 and instance.subscribers(job_id) == 0


def test_a_users_open_streams_are_capped_and_given_back(instance: Instance) -> None:
    """The per-user cap (SKETCHGEN_USER_STREAMS) on the async stack: the third stream is
    429 too_many_streams; a client that leaves gives its slot back; another user is free."""
    instance.serve(user_streams=2)
    job_id = instance.job(n=2)
    url = f"{instance.url}/v1/jobs/{job_id}/events"

    async def scenario() -> None:
        async with httpx.AsyncClient(timeout=30) as client:
            opened: list[int] = []
            first = asyncio.create_task(_listen(client, url, ALICE, opened))
            second = asyncio.create_task(_listen(client, url, ALICE, opened))
            await _until(lambda: len(opened) == 2)
            third = await client.get(url, headers=ALICE)
            assert third.status_code == 429
            error = third.json()["error"]
            assert error["code"] == "too_many_streams" and error["field"] == "streams"
            assert int(third.headers["retry-after"]) > 0
            first.cancel()  # the client goes away: its slot comes back
            with contextlib.suppress(asyncio.CancelledError):
                await first

            async def admitted() -> bool:
                async with client.stream("GET", url, headers=ALICE) as again:
                    return again.status_code == 200

            await wait_until_async(
                admitted, "the slot was never given back", timeout_s=30, interval_s=0.1
            )
            other_job = instance.job(n=1, owner="bob")
            other = f"{instance.url}/v1/jobs/{other_job}/events"
            async with client.stream("GET", other, headers=BOB) as bobs:
                assert bobs.status_code == 200
            second.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await second

    asyncio.run(scenario())


def test_a_last_chunk_ends_the_response_in_the_same_send() -> None:
    """The stream's last write (``done``) goes out as the body's end: one ASGI send, not the
    chunk and then an empty one; a body without one ends as Starlette ends it."""
    from sketchgen.api.asgi import _Stream
    from sketchgen.api.sse import LastChunk

    async def body(last: bool) -> Any:
        yield b"retry: 2000\n\n"
        yield LastChunk(b"event: done\n\n") if last else b"event: done\n\n"

    def sends(last: bool) -> list[dict[str, Any]]:
        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        asyncio.run(_Stream(body(last), status_code=200).stream_response(send))
        return sent

    bodies = [(m["body"], m["more_body"]) for m in sends(True)[1:]]
    assert bodies == [(b"retry: 2000\n\n", True), (b"event: done\n\n", False)]
    bodies = [(m["body"], m["more_body"]) for m in sends(False)[1:]]
    assert bodies == [(b"retry: 2000\n\n", True), (b"event: done\n\n", True), (b"", False)]
