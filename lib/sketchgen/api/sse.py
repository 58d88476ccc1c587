"""Server-Sent Events for one job, fed by the job store's document listener.

Event ids are the sketches' ``seq`` (the order they ended in, 1..N) and ``N + 1`` for
``done``, so a client reconnecting with ``Last-Event-ID: k`` is sent exactly what came after k.
Every stream of a job in this process shares one listener (:mod:`sketchgen.api.feed`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sketchgen.api.feed import JobFeed, feed_for
from sketchgen.jobs import TERMINAL_SKETCH, JobRecord, SketchState
from sketchgen.layout import metadata_key, sketch_key
from sketchgen.ports import JobStore

__all__ = [
    "EventStream",
    "async_event_stream",
    "event_stream",
    "format_event",
    "parse_last_event_id",
]

RETRY = b"retry: 2000\n\n"
HEARTBEAT = b": heartbeat\n\n"

# URLs being made for streams on this loop, by (loop, scope, key): when a job ends, its N
# clients all want the same metadata URL at once, before any has been cached; the first makes
# it (signing may be an IAM call) and the others await that one instead of N of their own.
_making: dict[tuple[asyncio.AbstractEventLoop, str, str], asyncio.Future[str]] = {}


async def _one_url(scope: str, key: str, url_for: Callable[[str], str]) -> str:
    loop = asyncio.get_running_loop()
    slot = (loop, scope, key)
    making = _making.get(slot)
    if making is None:
        making = _making[slot] = asyncio.ensure_future(asyncio.to_thread(url_for, key))
        making.add_done_callback(lambda _: _making.pop(slot, None))
    # Shielded: a client that leaves while waiting must not cancel the others' URL.
    return await asyncio.shield(making)


def parse_last_event_id(value: str | None) -> int:
    """A malformed Last-Event-ID counts as none: the client gets the whole stream again."""
    try:
        return max(0, int(value or 0))
    except ValueError:
        return 0


def format_event(event: str, event_id: int, data: dict[str, Any]) -> bytes:
    return f"id: {event_id}\nevent: {event}\ndata: {json.dumps(data)}\n\n".encode()


def _new_events(item: JobRecord, sent: int) -> list[tuple[int, int, SketchState]]:
    """The ended sketches of ``item`` a client that has event ``sent`` has not been sent."""
    return sorted(
        (s.seq, int(i), s)
        for i, s in item.sketches.items()
        if s.status in TERMINAL_SKETCH and s.seq is not None and s.seq > sent
    )


def _sketch_event(seq: int, index: int, state: SketchState, url: str | None) -> bytes:
    data = {
        "index": index,
        "status": state.status,
        "url": url,
        "error": state.error,
        "finish_reason": state.finish_reason,
        "model_used": state.model_used,
    }
    return format_event("sketch", seq, data)


def _done_event(item: JobRecord, metadata_url: str | None) -> bytes:
    return format_event(
        "done", item.event_seq + 1, {"status": item.status, "metadata_url": metadata_url}
    )


def event_stream(
    jobs: JobStore,
    job_id: str,
    last_event_id: int,
    *,
    url_for: Callable[[str], str],
    heartbeat_s: float = 15.0,
    feed: JobFeed | None = None,
) -> Iterator[bytes]:
    """The stream on a thread (WSGI: ``sketchgen serve``)."""
    sent = last_event_id
    # Tell the browser how soon to reconnect, and open the stream at once through proxies.
    yield RETRY
    with (feed or feed_for(jobs)).subscribe(job_id) as subscription:
        while True:
            item = subscription.next(heartbeat_s)
            if item is None:
                yield HEARTBEAT
                continue
            if not isinstance(item, JobRecord):  # CLOSED: the listener stopped
                return
            for seq, index, state in _new_events(item, sent):
                url = url_for(sketch_key(job_id, index)) if state.status == "ok" else None
                yield _sketch_event(seq, index, state, url)
                sent = seq
            if item.is_final:
                yield _done_event(
                    item, url_for(metadata_key(job_id)) if item.metadata_path else None
                )
                return


async def async_event_stream(
    jobs: JobStore,
    job_id: str,
    last_event_id: int,
    *,
    url_for: Callable[[str], str],
    heartbeat_s: float = 15.0,
    feed: JobFeed | None = None,
    cached_url: Callable[[str], str | None] | None = None,
    url_scope: str = "",
) -> AsyncIterator[bytes]:
    """The same stream as :func:`event_stream` on an event loop (the stream function): the
    client holds a queue on the job's shared listener, not a thread. ``url_for`` may sign a
    URL over the network, so it runs in the loop's executor unless ``cached_url`` (no I/O)
    has it; streams with the same ``url_scope`` (the URL's base) make a missing URL once
    between them. What one snapshot brings goes out as one write: when a job ends, every
    client of it gets its events at the same moment, and a write per client is what that
    costs."""

    async def url(key: str) -> str:
        found = cached_url(key) if cached_url is not None else None
        return found if found is not None else await _one_url(url_scope, key, url_for)

    sent = last_event_id
    yield RETRY
    async with (feed or feed_for(jobs)).subscribe_async(job_id) as subscription:
        while True:
            item = await subscription.next(heartbeat_s)
            if item is None:
                yield HEARTBEAT
                continue
            if not isinstance(item, JobRecord):
                return
            chunks = []
            for seq, index, state in _new_events(item, sent):
                sketch_url = await url(sketch_key(job_id, index)) if state.status == "ok" else None
                chunks.append(_sketch_event(seq, index, state, sketch_url))
                sent = seq
            if item.is_final:
                metadata_url = await url(metadata_key(job_id)) if item.metadata_path else None
                chunks.append(_done_event(item, metadata_url))
            if chunks:
                yield b"".join(chunks)
            if item.is_final:
                return


@dataclass(frozen=True)
class EventStream:
    """A response body that streams on either stack: iterated, it is :func:`event_stream`
    (WSGI); async-iterated, :func:`async_event_stream` (:mod:`sketchgen.api.asgi`)."""

    jobs: JobStore
    job_id: str
    last_event_id: int
    url_for: Callable[[str], str]
    heartbeat_s: float = 15.0
    feed: JobFeed | None = None
    cached_url: Callable[[str], str | None] | None = None  # the async stream's fast path
    url_scope: str = ""  # streams whose url_for gives the same URLs: made once between them

    def __iter__(self) -> Iterator[bytes]:
        return event_stream(
            self.jobs,
            self.job_id,
            self.last_event_id,
            url_for=self.url_for,
            heartbeat_s=self.heartbeat_s,
            feed=self.feed,
        )

    def __aiter__(self) -> AsyncIterator[bytes]:
        return async_event_stream(
            self.jobs,
            self.job_id,
            self.last_event_id,
            url_for=self.url_for,
            heartbeat_s=self.heartbeat_s,
            feed=self.feed,
            cached_url=self.cached_url,
            url_scope=self.url_scope,
        )
