"""The one core behind both event streams (ADR 0071): what a client is written for each
wake-up of its subscription (:class:`sketchgen.api.sse._Cursor`) and what a subscriber is
handed (:meth:`sketchgen.api.feed._Watch.take`), with no waiting and no I/O; then the two
drivers, on a thread and on an event loop, written the same bytes."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from sketchgen.adapters.local.job_store import MemoryJobStore
from sketchgen.api.feed import CLOSED, JobFeed, _Watch
from sketchgen.api.sse import HEARTBEAT, _Cursor, async_event_stream, event_stream
from sketchgen.jobs import JobRecord, JobStatus, SketchState, SketchStatusName
from sketchgen.layout import metadata_key, sketch_key
from tests.contract.job_store_contract import make_job


def _snapshot(
    ended: dict[int, tuple[int, SketchStatusName]],
    *,
    status: JobStatus = "running",
    metadata: bool = False,
) -> JobRecord:
    """A job of 4 sketches whose sketch ``index`` ended ``(seq, status)``."""
    job = make_job(n=4)
    sketches = dict(job.sketches)
    for index, (seq, sketch_status) in ended.items():
        sketches[str(index)] = SketchState(
            status=sketch_status,
            seq=seq,
            path=f"p{index}" if sketch_status == "ok" else None,
            error=None if sketch_status == "ok" else "refused",
        )
    return job.model_copy(
        update={
            "sketches": sketches,
            "status": status,
            "event_seq": max((seq for seq, _ in ended.values()), default=0),
            "metadata_path": "m.json" if metadata else None,
        }
    )


def _parsed(events: list[bytes]) -> list[tuple[int, str, dict[str, Any]]]:
    found = []
    for event in events:
        fields = dict(line.split(": ", 1) for line in event.decode().splitlines() if line)
        found.append((int(fields["id"]), fields["event"], json.loads(fields["data"])))
    return found


def _urls(keys: list[str]) -> dict[str, str]:
    return {key: f"https://u/{key}" for key in keys}


# -- the stream's core ---------------------------------------------------------------------


def test_a_wake_up_with_nothing_is_a_heartbeat_and_a_closed_feed_ends_the_stream() -> None:
    cursor = _Cursor("j", 0)
    assert cursor.wake(None) == HEARTBEAT and not cursor.ended
    snapshot = _snapshot({})
    assert cursor.wake(snapshot) is snapshot and not cursor.ended
    assert cursor.wake(CLOSED) == b"" and cursor.ended


def test_events_go_in_the_order_sketches_ended_after_the_last_event_id() -> None:
    snapshot = _snapshot({3: (1, "ok"), 0: (2, "failed"), 2: (3, "ok")})
    cursor = _Cursor(snapshot.job_id, 1)  # resumed: it has event 1 (sketch 3)
    keys = cursor.url_keys(snapshot)
    assert keys == [sketch_key(snapshot.job_id, 2)]  # a failed sketch has no URL to make
    events, sent = cursor.encode(snapshot, _urls(keys))
    parsed = _parsed(events)
    assert [(i, e, d["index"]) for i, e, d in parsed] == [(2, "sketch", 0), (3, "sketch", 2)]
    assert parsed[0][2]["url"] is None and parsed[0][2]["error"] == "refused"
    assert parsed[1][2]["url"] == f"https://u/{sketch_key(snapshot.job_id, 2)}"
    assert sent == 3 and cursor.sent == 1  # encoding does not move the cursor
    cursor.wrote(snapshot, sent)
    assert cursor.sent == 3 and not cursor.ended  # the job is still running
    assert cursor.url_keys(snapshot) == [] and cursor.encode(snapshot, {}) == ([], 3)


def test_a_final_snapshot_ends_with_done_after_the_last_sketch() -> None:
    snapshot = _snapshot({0: (1, "ok"), 1: (2, "ok")}, status="done", metadata=True)
    cursor = _Cursor(snapshot.job_id, 1)
    keys = cursor.url_keys(snapshot)
    assert keys == [sketch_key(snapshot.job_id, 1), metadata_key(snapshot.job_id)]
    events, sent = cursor.encode(snapshot, _urls(keys))
    parsed = _parsed(events)
    assert [(i, e) for i, e, _ in parsed] == [(2, "sketch"), (3, "done")]
    assert parsed[-1][2] == {
        "status": "done",
        "metadata_url": f"https://u/{metadata_key(snapshot.job_id)}",
    }
    assert sent == 3
    cursor.wrote(snapshot, sent)
    assert cursor.ended


def test_a_final_job_without_metadata_asks_for_no_metadata_url() -> None:
    snapshot = _snapshot({0: (1, "cancelled")}, status="cancelled")
    cursor = _Cursor(snapshot.job_id, 0)
    assert cursor.url_keys(snapshot) == []
    events, sent = cursor.encode(snapshot, {})
    assert _parsed(events)[-1] == (2, "done", {"status": "cancelled", "metadata_url": None})
    assert sent == 2


# -- what a subscriber is handed -----------------------------------------------------------


def test_a_subscriber_is_handed_the_newest_snapshot_once_then_closed() -> None:
    first, second = _snapshot({0: (1, "ok")}), _snapshot({0: (1, "ok"), 1: (2, "ok")})
    watch = _Watch(JobFeed(MemoryJobStore()), first.job_id)
    assert watch.take(0) == (None, 0)  # nothing yet, listener open: wait
    watch._run(iter([first, second]))  # the listener delivers two, then stops
    assert watch.take(0) == (second, 2)  # the intermediate one is skipped: a whole state
    assert watch.take(1) == (second, 2)
    assert watch.take(2) == (CLOSED, 2)  # every snapshot handed: then CLOSED, for good
    assert watch.take(2) == (CLOSED, 2)


def test_an_async_subscriber_woken_for_a_snapshot_it_has_waits_on() -> None:
    """A wake-up can arrive after its snapshot was taken (it was on its way): the subscriber
    is not handed the snapshot again, nor a heartbeat early; it waits its whole timeout."""
    store = MemoryJobStore()
    job = make_job(n=1)
    store.create_job(job)
    feed = JobFeed(store)

    async def scenario() -> tuple[object, object, float]:
        loop = asyncio.get_running_loop()
        async with feed.subscribe_async(job.job_id) as subscription:
            first = await subscription.next(5)
            watch = feed._watches[job.job_id]
            loop.call_soon(watch._wake, loop)  # a stale wake-up, while it waits
            started = loop.time()
            second = await subscription.next(0.3)
            return first, second, loop.time() - started

    first, second, waited = asyncio.run(scenario())
    assert first == job and second is None and waited >= 0.25


# -- the two drivers -----------------------------------------------------------------------


def test_the_thread_and_the_loop_streams_write_the_same_bytes() -> None:
    """For the same job, from every Last-Event-ID: one core, whichever driver."""
    store = MemoryJobStore()
    job = make_job(n=3)
    store.create_job(job)
    for index, state in ((2, SketchState(status="ok", path="p")), (0, None), (1, None)):
        store.claim_sketch(job.job_id, index, worker="w", lease_s=60)
        ended = state or SketchState(status="failed", error="refused")
        store.finish_sketch(job.job_id, index, worker="w", state=ended)
    store.complete_job(job.job_id, metadata_path="m.json")
    feed = JobFeed(store)

    def on_thread(last: int) -> bytes:
        return b"".join(event_stream(store, job.job_id, last, url_for=str, feed=feed))

    async def on_loop(last: int) -> bytes:
        stream = async_event_stream(store, job.job_id, last, url_for=str, feed=feed)
        return b"".join([chunk async for chunk in stream])

    for last in range(4):  # 4: the client has `done` (the route answers 204 instead)
        threaded = on_thread(last)
        assert threaded == asyncio.run(on_loop(last))
        assert threaded.startswith(b"retry: 2000\n\n") and threaded.count(b"event: done") == 1
        ids = [int(line[4:]) for line in threaded.decode().splitlines() if line[:4] == "id: "]
        assert ids == list(range(last + 1, 5))
