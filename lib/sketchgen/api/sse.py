"""Server-Sent Events for one job, fed by the job store's document listener.

Event ids are the sketches' ``seq`` (the order they ended in, 1..N) and ``N + 1`` for
``done``, so a client reconnecting with ``Last-Event-ID: k`` is sent exactly what came after k.
Every stream of a job in this process shares one listener (:mod:`sketchgen.api.feed`).

What a stream sends is decided in one place, :class:`_Cursor` (no waiting, no I/O); the two
drivers, :func:`event_stream` on a thread (WSGI) and :func:`async_event_stream` on an event
loop (the stream function), only wait on the feed, make URLs and write
(docs/decisions/0071-one-stream-core-two-drivers.md).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sketchgen.api.feed import Closed, JobFeed, feed_for
from sketchgen.jobs import TERMINAL_SKETCH, JobRecord, SketchState
from sketchgen.layout import metadata_key, sketch_key
from sketchgen.ports import JobStore

__all__ = [
    "EventStream",
    "LastChunk",
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


class _Cursor:
    """One client's place in its job's events, and what each wake-up of its subscription
    brings it: the whole of a stream's logic (heartbeats, resuming after ``Last-Event-ID``,
    the ``done`` event, the end), with no waiting and no I/O. A driver hands it what the
    subscription returned (:meth:`wake`), makes the URLs it names (:meth:`url_keys`), writes
    what :meth:`encode` gives and tells it so (:meth:`wrote`), until :attr:`ended`."""

    __slots__ = ("ended", "job_id", "sent")

    def __init__(self, job_id: str, last_event_id: int) -> None:
        self.job_id = job_id
        self.sent = last_event_id  # the last event id the client has
        self.ended = False

    def wake(self, item: JobRecord | Closed | None) -> JobRecord | bytes:
        """A heartbeat when nothing came (None); nothing when the listener stopped (CLOSED:
        the stream ends); else the snapshot, for :meth:`encode`."""
        if item is None:
            return HEARTBEAT
        if not isinstance(item, JobRecord):
            self.ended = True
            return b""
        return item

    def _new(self, item: JobRecord) -> list[tuple[int, int, SketchState]]:
        """The ended sketches of ``item`` the client has not been sent, in ``seq`` order."""
        sent = self.sent
        return sorted(
            (s.seq, int(i), s)
            for i, s in item.sketches.items()
            if s.status in TERMINAL_SKETCH and s.seq is not None and s.seq > sent
        )

    def url_keys(self, item: JobRecord) -> list[str]:
        """The blob keys whose URLs the events ``item`` brings carry."""
        job_id = self.job_id
        keys = [sketch_key(job_id, i) for _, i, s in self._new(item) if s.status == "ok"]
        if item.is_final and item.metadata_path:
            keys.append(metadata_key(job_id))
        return keys

    def encode(self, item: JobRecord, urls: dict[str, str]) -> tuple[list[bytes], int]:
        """The events ``item`` brings (none: nothing new), ``done`` last if it is final, and
        the last event id the client then has; ``urls`` holds every key :meth:`url_keys`
        names. The cursor does not move (:meth:`wrote` moves it)."""
        job_id, sent, events = self.job_id, self.sent, []
        for seq, index, state in self._new(item):
            data = {
                "index": index,
                "status": state.status,
                "url": urls[sketch_key(job_id, index)] if state.status == "ok" else None,
                "error": state.error,
                "finish_reason": state.finish_reason,
                "model_used": state.model_used,
            }
            events.append(format_event("sketch", seq, data))
            sent = seq
        if item.is_final:
            metadata_url = urls[metadata_key(job_id)] if item.metadata_path else None
            done = {"status": item.status, "metadata_url": metadata_url}
            events.append(format_event("done", item.event_seq + 1, done))
            sent = item.event_seq + 1
        return events, sent

    def wrote(self, item: JobRecord, sent: int) -> None:
        """The client was written what :meth:`encode` gave for ``item``."""
        self.sent = sent
        self.ended = item.is_final


class LastChunk(bytes):
    """A stream's last write (it ends with ``done``): the ASGI response sends it as the
    body's end, one send through the server's stack instead of the chunk and then an empty
    end."""


# The chunks being (or just) made for async streams: when a job ends, its N clients wake on
# the same snapshot having been sent the same events, so what the first one encodes (its
# URLs, the JSON, the bytes) is every other's, shared by reference. By (loop, URL scope, job,
# the snapshot's identity, last event sent); an entry holds its snapshot (so the identity is
# not reused) and is reused for _CHUNK_REUSE_S at most (its URLs are no older than that plus
# the URL cache's own age, a third of their lifetime).
_CHUNK_REUSE_S = 5.0
_CHUNK_ENTRIES = 256
_ChunkKey = tuple[asyncio.AbstractEventLoop, str, str, int, int]


@dataclass(frozen=True)
class _Chunk:
    item: JobRecord
    made: float  # loop time
    result: tuple[bytes, int] | None  # made at once (every URL was cached, or none needed)
    making: asyncio.Future[tuple[bytes, int]] | None = None


_chunks: dict[_ChunkKey, _Chunk] = {}


async def _chunk(
    job_id: str,
    item: JobRecord,
    sent: int,
    *,
    url_scope: str,
    cached_url: Callable[[str], str | None] | None,
    url_for: Callable[[str], str],
) -> tuple[bytes, int]:
    """What ``item`` brings an async stream that has event ``sent``, as one write (empty:
    nothing new), and the last event id it then has; made once for every stream of the same
    job, URL scope and progress that asks for it within :data:`_CHUNK_REUSE_S`."""
    loop = asyncio.get_running_loop()
    key = (loop, url_scope, job_id, id(item), sent)
    now = loop.time()
    entry = _chunks.get(key)
    if entry is None or entry.item is not item or now - entry.made > _CHUNK_REUSE_S:
        if len(_chunks) >= _CHUNK_ENTRIES:
            _prune_chunks(now)
        entry = _chunks[key] = _new_chunk(
            job_id, item, sent, now, url_scope=url_scope, cached_url=cached_url, url_for=url_for
        )
    if entry.result is not None:
        return entry.result
    assert entry.making is not None
    # Shielded: a client that leaves while waiting must not cancel the others' chunk.
    return await asyncio.shield(entry.making)


def _new_chunk(
    job_id: str,
    item: JobRecord,
    sent: int,
    now: float,
    *,
    url_scope: str,
    cached_url: Callable[[str], str | None] | None,
    url_for: Callable[[str], str],
) -> _Chunk:
    cursor = _Cursor(job_id, sent)  # any client at this point: they all get its chunk
    keys = cursor.url_keys(item)
    urls = {k: u for k in keys if (u := cached_url(k) if cached_url else None) is not None}
    if len(urls) == len(keys):  # nothing to make: encoded now, no task
        return _Chunk(item, now, _joined(cursor, item, urls))

    async def make() -> tuple[bytes, int]:
        for k in keys:
            if k not in urls:
                urls[k] = await _one_url(url_scope, k, url_for)
        return _joined(cursor, item, urls)

    making = asyncio.ensure_future(make())
    key = (asyncio.get_running_loop(), url_scope, job_id, id(item), sent)

    def forget_failed(done: asyncio.Future[tuple[bytes, int]]) -> None:
        # A URL that could not be made is the next client's to try again, not an answer.
        entry = _chunks.get(key)
        failed = done.cancelled() or done.exception() is not None
        if failed and entry is not None and entry.making is done:
            del _chunks[key]

    making.add_done_callback(forget_failed)
    return _Chunk(item, now, None, making)


def _joined(cursor: _Cursor, item: JobRecord, urls: dict[str, str]) -> tuple[bytes, int]:
    events, sent = cursor.encode(item, urls)
    return (LastChunk if item.is_final else bytes)(b"".join(events)), sent


def _prune_chunks(now: float) -> None:
    for key, entry in list(_chunks.items()):
        if now - entry.made > _CHUNK_REUSE_S or key[0].is_closed():
            del _chunks[key]
    if len(_chunks) >= _CHUNK_ENTRIES:  # a burst of distinct ones: start again
        _chunks.clear()


def event_stream(
    jobs: JobStore,
    job_id: str,
    last_event_id: int,
    *,
    url_for: Callable[[str], str],
    heartbeat_s: float = 15.0,
    feed: JobFeed | None = None,
) -> Iterator[bytes]:
    """The stream on a thread (WSGI: ``sketchgen serve``): a write per event."""
    cursor = _Cursor(job_id, last_event_id)
    # Tell the browser how soon to reconnect, and open the stream at once through proxies.
    yield RETRY
    with (feed or feed_for(jobs)).subscribe(job_id) as subscription:
        while not cursor.ended:
            woke = cursor.wake(subscription.next(heartbeat_s))
            if isinstance(woke, JobRecord):
                events, sent = cursor.encode(woke, {k: url_for(k) for k in cursor.url_keys(woke)})
                yield from events
                cursor.wrote(woke, sent)
            elif woke:
                yield woke


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
    client waits on the job's shared listener as a task, not a thread. ``url_for`` may sign a
    URL over the network, so it runs in the loop's executor unless ``cached_url`` (no I/O)
    has it. What one snapshot brings goes out as one write, and streams with the same
    ``url_scope`` (the URL's base) that are at the same event share it: when a job ends,
    its N clients wake on the same snapshot, and the first one's chunk (URLs made, JSON
    encoded) is written to every other (:func:`_chunk`). The last write ends the response
    (:class:`LastChunk`)."""
    cursor = _Cursor(job_id, last_event_id)
    yield RETRY
    async with (feed or feed_for(jobs)).subscribe_async(job_id) as subscription:
        while not cursor.ended:
            woke = cursor.wake(await subscription.next(heartbeat_s))
            if isinstance(woke, JobRecord):
                chunk, sent = await _chunk(
                    job_id, woke, cursor.sent,
                    url_scope=url_scope, cached_url=cached_url, url_for=url_for,
                )  # fmt: skip
                if chunk:
                    yield chunk  # the same bytes object for every client at this point
                cursor.wrote(woke, sent)
            elif woke:
                yield woke


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
