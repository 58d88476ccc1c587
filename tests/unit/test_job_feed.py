"""The per-job feed behind the event streams: one listener per job, however many clients."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

from sketchgen.adapters.local.job_store import MemoryJobStore
from sketchgen.api.feed import CLOSED, JobFeed
from sketchgen.api.sse import event_stream
from sketchgen.jobs import JobRecord, SketchState
from tests.contract.job_store_contract import make_job
from tests.helpers.waiting import wait_until_async


class CountingJobStore(MemoryJobStore):
    """A memory store that counts the listeners open on it."""

    def __init__(self) -> None:
        super().__init__()
        self.opened = 0
        self.open_now = 0
        self._count = threading.Lock()

    def watch_job(self, job_id: str) -> AbstractContextManager[Iterator[JobRecord]]:
        return self._counted(job_id)

    @contextmanager
    def _counted(self, job_id: str) -> Iterator[Iterator[JobRecord]]:
        with self._count:
            self.opened += 1
            self.open_now += 1
        try:
            with super().watch_job(job_id) as snapshots:
                yield snapshots
        finally:
            with self._count:
                self.open_now -= 1


def _finish(store: MemoryJobStore, job_id: str, index: int) -> None:
    store.claim_sketch(job_id, index, worker="w", lease_s=60)
    store.finish_sketch(job_id, index, worker="w", state=SketchState(status="ok", path="p"))


def _events(stream: Iterator[bytes]) -> list[tuple[int, str]]:
    found = []
    for chunk in stream:
        lines = dict(line.split(": ", 1) for line in chunk.decode().splitlines() if ": " in line)
        if "event" in lines:
            found.append((int(lines["id"]), lines["event"]))
    return found


def test_many_streams_of_one_job_share_one_listener() -> None:
    store = CountingJobStore()
    job = make_job(n=3)
    store.create_job(job)
    feed = JobFeed(store)
    clients = 20
    results: list[list[tuple[int, str]]] = [[] for _ in range(clients)]
    subscribed = threading.Barrier(clients + 1)

    def listen(i: int) -> None:
        stream = event_stream(store, job.job_id, 0, url_for=str, heartbeat_s=5, feed=feed)
        next(stream)  # "retry:"; the subscription opens with the first event
        first = next(stream)
        subscribed.wait()
        results[i] = _events(iter([first, *stream]))

    threads = [threading.Thread(target=listen, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    _finish(store, job.job_id, 0)  # every client's first event: sketch 0
    subscribed.wait(timeout=10)
    assert store.opened == 1 and feed.watching() == 1
    _finish(store, job.job_id, 1)
    _finish(store, job.job_id, 2)
    store.complete_job(job.job_id, metadata_path=None)
    for thread in threads:
        thread.join(timeout=10)
    expected = [(1, "sketch"), (2, "sketch"), (3, "sketch"), (4, "done")]
    assert all(r == expected for r in results)
    assert store.opened == 1 and store.open_now == 0 and feed.watching() == 0


def test_resume_with_last_event_id_and_heartbeats() -> None:
    store = CountingJobStore()
    job = make_job(n=2)
    store.create_job(job)
    feed = JobFeed(store)
    stream = event_stream(store, job.job_id, 1, url_for=str, heartbeat_s=0.05, feed=feed)
    assert next(stream).startswith(b"retry:")
    assert next(stream) == b": heartbeat\n\n"  # the job's snapshot holds nothing after id 1
    _finish(store, job.job_id, 0)
    _finish(store, job.job_id, 1)
    store.complete_job(job.job_id, metadata_path=None)
    assert _events(stream) == [(2, "sketch"), (3, "done")]  # seq 1 was seen before
    resumed = event_stream(store, job.job_id, 2, url_for=str, feed=feed)
    assert _events(resumed) == [(3, "done")]


def test_the_last_client_leaving_closes_the_listener() -> None:
    store = CountingJobStore()
    job = make_job(n=1)
    store.create_job(job)
    feed = JobFeed(store)
    with feed.subscribe(job.job_id) as first, feed.subscribe(job.job_id) as second:
        assert first.next(5) == second.next(5) == job
        assert store.opened == 1
    assert feed.watching() == 0
    with feed.subscribe(job.job_id) as again:  # a later client opens a fresh one
        assert again.next(5) == job
        assert store.opened == 2
    for _ in range(50):  # the store's iterator notices the close within its 1 s wake-up
        if store.open_now == 0:
            break
        threading.Event().wait(0.1)
    assert store.open_now == 0


def test_a_failing_listener_ends_every_stream() -> None:
    class Broken(MemoryJobStore):
        def watch_job(self, job_id: str) -> AbstractContextManager[Iterator[JobRecord]]:
            raise RuntimeError("listener refused")

    feed = JobFeed(Broken())
    with feed.subscribe("x") as subscription:
        assert subscription.next(5) == CLOSED


def test_async_clients_share_one_listener_fed_through_their_loop() -> None:
    """asyncio clients: a queue each on the job's one listener, no thread each."""
    import asyncio

    from sketchgen.api.sse import async_event_stream

    store = CountingJobStore()
    job = make_job(n=2)
    store.create_job(job)
    feed = JobFeed(store)

    async def scenario() -> list[list[tuple[int, str]]]:
        async def listen() -> list[tuple[int, str]]:
            chunks = [
                chunk
                async for chunk in async_event_stream(
                    store, job.job_id, 0, url_for=str, heartbeat_s=5, feed=feed
                )
            ]
            return _events(iter(b"".join(chunks).split(b"\n\n")))

        tasks = [asyncio.create_task(listen()) for _ in range(50)]

        async def all_listening() -> bool:
            return feed.async_subscribers() >= 50

        await wait_until_async(all_listening, "the 50 never all listened", interval_s=0.01)
        threads = threading.active_count()
        await asyncio.to_thread(_finish, store, job.job_id, 0)
        await asyncio.to_thread(_finish, store, job.job_id, 1)
        await asyncio.to_thread(store.complete_job, job.job_id, metadata_path=None)
        results = await asyncio.gather(*tasks)
        assert threading.active_count() < threads + 10  # the executor's few, not one a client
        return results

    results = asyncio.run(scenario())
    assert all(r == [(1, "sketch"), (2, "sketch"), (3, "done")] for r in results)
    assert store.opened == 1 and feed.watching() == 0


def test_an_async_client_joining_an_ended_job_gets_its_last_snapshot_then_closed() -> None:
    import asyncio

    store = CountingJobStore()
    job = make_job(n=1)
    store.create_job(job)
    _finish(store, job.job_id, 0)
    final = store.complete_job(job.job_id, metadata_path=None)
    feed = JobFeed(store)

    async def scenario() -> list[object]:
        async with feed.subscribe_async(job.job_id) as subscription:
            return [await subscription.next(5), await subscription.next(5)]

    first, second = asyncio.run(scenario())
    assert first == final and second == CLOSED


def test_clients_of_an_ending_job_make_its_urls_once_between_them() -> None:
    """When a job ends its clients all want the same URLs before any is cached: each is made
    once (signing can be a network call per URL), and every client gets it."""
    import asyncio

    from sketchgen.api.sse import async_event_stream

    store = CountingJobStore()
    job = make_job(n=1)
    store.create_job(job)
    feed = JobFeed(store)
    made: list[str] = []
    cache: dict[str, str] = {}  # as the API's: filled by the maker, read without I/O
    release = threading.Event()

    def signer(key: str) -> str:  # answers only once every client is waiting for it
        made.append(key)
        release.wait(10)
        cache[key] = f"https://signed/{key}"
        return cache[key]

    async def scenario() -> list[bytes]:
        async def listen() -> bytes:
            stream = async_event_stream(
                store, job.job_id, 0, url_for=signer, heartbeat_s=5, feed=feed,
                cached_url=cache.get, url_scope="https://api",
            )  # fmt: skip
            return b"".join([chunk async for chunk in stream])

        tasks = [asyncio.create_task(listen()) for _ in range(30)]

        async def all_listening() -> bool:
            return feed.async_subscribers(job.job_id) >= 30

        await wait_until_async(all_listening, "the 30 never all listened", interval_s=0.01)
        await asyncio.to_thread(_finish, store, job.job_id, 0)
        await asyncio.to_thread(store.complete_job, job.job_id, metadata_path="m.json")

        async def one_made() -> bool:  # one snapshot woke all 30: they wait on this one URL
            return bool(made)

        await wait_until_async(one_made, "no URL was made", interval_s=0.01)
        release.set()
        return await asyncio.gather(*tasks)

    bodies = asyncio.run(scenario())
    sketch, metadata = f"jobs/{job.job_id}/sketch_0.png", f"jobs/{job.job_id}/metadata.json"
    assert made == [sketch, metadata]  # each URL made once for the 30 clients
    for body in bodies:
        assert f"https://signed/{sketch}".encode() in body
        assert f"https://signed/{metadata}".encode() in body


def test_clients_at_the_same_event_are_written_one_chunk() -> None:
    """When a job ends, its clients that have been sent the same events are written the same
    bytes (made and encoded once), the last of them marked as the body's end; a client whose
    URLs differ (another base URL) gets its own."""
    import asyncio

    from sketchgen.api.sse import LastChunk, async_event_stream

    store = CountingJobStore()
    job = make_job(n=2)
    store.create_job(job)
    _finish(store, job.job_id, 0)
    feed = JobFeed(store)
    made: list[str] = []

    def signer(scope: str) -> Callable[[str], str]:
        def url_for(key: str) -> str:
            made.append(f"{scope}/{key}")
            return f"{scope}/{key}"

        return url_for

    async def scenario() -> list[list[bytes]]:
        async def listen(scope: str) -> list[bytes]:
            stream = async_event_stream(
                store, job.job_id, 0, url_for=signer(scope), heartbeat_s=5, feed=feed,
                url_scope=scope,
            )  # fmt: skip
            return [chunk async for chunk in stream]

        scopes = ["https://api"] * 5 + ["https://other"]
        tasks = [asyncio.create_task(listen(scope)) for scope in scopes]
        while feed.async_subscribers(job.job_id) < 6:
            await asyncio.sleep(0.01)
        await asyncio.to_thread(_finish, store, job.job_id, 1)
        await asyncio.to_thread(store.complete_job, job.job_id, metadata_path="m.json")
        return await asyncio.gather(*tasks)

    *same, other = asyncio.run(scenario())
    last = same[0][-1]
    assert isinstance(last, LastChunk) and b"event: done" in last
    assert all(chunks[-1] is last for chunks in same)  # one object, written to each
    assert all(len(chunks) == len(same[0]) for chunks in same)
    assert all(a is b for chunks in same for a, b in zip(chunks[1:], same[0][1:], strict=True))
    assert b"https://other/" in other[-1] and b"https://api/" not in other[-1]
    assert isinstance(other[-1], LastChunk) and other[-1] is not last
    # Each URL made once per base URL, not once per client.
    assert sorted(made) == sorted(set(made)) and len(made) == 2 * 3


def test_a_chunk_whose_url_failed_is_made_again_by_the_next_client() -> None:
    import asyncio

    from sketchgen.api.sse import _chunk

    store = CountingJobStore()
    job = make_job(n=1)
    store.create_job(job)
    _finish(store, job.job_id, 0)
    item = store.complete_job(job.job_id, metadata_path=None)
    calls: list[str] = []

    def flaky(key: str) -> str:
        calls.append(key)
        if len(calls) == 1:
            raise OSError("signing refused")
        return f"https://signed/{key}"

    async def scenario() -> bytes:
        with contextlib.suppress(OSError):
            await _chunk(job.job_id, item, 0, url_scope="s", cached_url=None, url_for=flaky)
            raise AssertionError("the first client's URL failed")
        chunk, sent = await _chunk(
            job.job_id, item, 0, url_scope="s", cached_url=None, url_for=flaky
        )
        assert sent == item.event_seq + 1
        return chunk

    body = asyncio.run(scenario())
    assert len(calls) == 2 and b"https://signed/" in body
