"""One job listener per job in a process, shared by every event stream of that job.

Each SSE client used to open its own listener (a Firestore watch: a gRPC stream and the SDK's
consumer thread) plus a thread copying its snapshots. A job watched by N clients now costs
one watch, whichever client came first opening it and the last one leaving closing it.

A job document is a whole state, not a delta: a subscriber needs only the newest snapshot,
so the feed keeps that one (and a version number) instead of a queue per client; a slow
client skips intermediate snapshots and still sends every event, because events come from
the sketches' ``seq`` in the newest snapshot (see :mod:`sketchgen.api.sse`).

Two kinds of subscriber share a watch: a thread (:meth:`JobFeed.subscribe`, the WSGI path of
``sketchgen serve``) waits on a condition; an asyncio task (:meth:`JobFeed.subscribe_async`,
the stream function on functions-framework's ASGI stack) owns an ``asyncio.Queue`` that the
listener's thread fills with ``loop.call_soon_threadsafe``, so an async client costs neither a
thread nor a listener (docs/decisions/0014-async-stream-function.md).
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager, suppress
from typing import Literal

from sketchgen.jobs import JobRecord
from sketchgen.logs import get_logger
from sketchgen.ports import JobStore

__all__ = ["CLOSED", "AsyncSubscription", "JobFeed", "Subscription", "feed_for"]

log = get_logger(__name__)

Closed = Literal["closed"]
CLOSED: Closed = "closed"
_Item = JobRecord | Closed


class _Watch:
    """The one listener on one job, and the newest snapshot it delivered."""

    def __init__(self, feed: JobFeed, job_id: str) -> None:
        self.feed = feed
        self.job_id = job_id
        self.changed = threading.Condition()
        self.latest: JobRecord | None = None
        self.version = 0
        self.ended = False  # the listener stopped: the job is final, it failed, or was closed
        self.subscribers = 0
        # Async subscribers' queues by their loop; written under ``changed``.
        self.queues: dict[asyncio.AbstractEventLoop, set[asyncio.Queue[_Item]]] = {}
        self._listener: AbstractContextManager[Iterator[JobRecord]] | None = None
        self._close_lock = threading.Lock()
        self._closed = False

    def start(self) -> None:
        # The listener is opened here, on the subscriber's thread, so the subscriber's first
        # wait finds it open; the thread then only copies snapshots.
        try:
            listener = self.feed.jobs.watch_job(self.job_id)
            snapshots = listener.__enter__()
        except Exception as error:
            log.warning("job listener failed to open: %s", error)
            self._end()
            return
        with self._close_lock:
            self._listener = listener
            closed = self._closed
        if closed:  # every subscriber left while it opened (an async client that went away)
            self._exit(listener)
            self._end()
            return
        threading.Thread(
            target=self._run, args=(snapshots,), daemon=True, name=f"feed-{self.job_id}"
        ).start()

    def _run(self, snapshots: Iterator[JobRecord]) -> None:
        try:
            for snapshot in snapshots:
                with self.changed:
                    self.latest = snapshot
                    self.version += 1
                    self.changed.notify_all()
                    self._post(snapshot)
                if snapshot.is_final:
                    break
        except Exception as error:
            log.warning("job listener failed: %s", error)
        finally:
            self.close()
            self._end()

    def _end(self) -> None:
        with self.changed:
            self.ended = True
            self.changed.notify_all()
            self._post(CLOSED)
        self.feed._forget(self)

    def _post(self, item: _Item) -> None:
        """Hand ``item`` to every async subscriber (caller holds ``changed``): one wake-up
        per event loop, which then fills its subscribers' queues itself."""
        for loop in self.queues:
            with suppress(RuntimeError):  # that loop is closed: its subscribers are gone
                loop.call_soon_threadsafe(self._deliver, loop, item)

    def _deliver(self, loop: asyncio.AbstractEventLoop, item: _Item) -> None:
        with self.changed:
            queues = list(self.queues.get(loop, ()))
        for queue in queues:
            queue.put_nowait(item)

    def add_queue(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[_Item]) -> None:
        """Register an async subscriber (on its loop's thread); it is handed the newest
        snapshot at once, and CLOSED if the listener already stopped. (A delivery already
        on its way may hand it that snapshot again: a stream skips what it has sent.)"""
        with self.changed:
            self.queues.setdefault(loop, set()).add(queue)
            if self.latest is not None:
                queue.put_nowait(self.latest)
            if self.ended:
                queue.put_nowait(CLOSED)

    def remove_queue(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[_Item]) -> None:
        with self.changed:
            queues = self.queues.get(loop)
            if queues is not None:
                queues.discard(queue)
                if not queues:
                    del self.queues[loop]

    def close(self) -> None:
        """Close the listener once, from whichever thread gets here first (the last
        subscriber leaving, or the listener's own thread when the job ended)."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
            listener = self._listener
        if listener is not None:  # else start() closes it as soon as it is open
            self._exit(listener)

    @staticmethod
    def _exit(listener: AbstractContextManager[Iterator[JobRecord]]) -> None:
        try:
            listener.__exit__(None, None, None)
        except Exception as error:
            log.warning("closing a job listener failed: %s", error)


class Subscription:
    """One client's view of a job's feed."""

    def __init__(self, watch: _Watch) -> None:
        self._watch = watch
        self._seen = 0

    def next(self, timeout_s: float) -> JobRecord | Closed | None:
        """The newest snapshot not yet returned; CLOSED once the listener stopped and every
        snapshot was returned; None if nothing came within ``timeout_s`` (a heartbeat)."""
        watch = self._watch
        with watch.changed:
            if watch.version == self._seen and not watch.ended:
                watch.changed.wait(timeout_s)
            if watch.version > self._seen and watch.latest is not None:
                self._seen = watch.version
                return watch.latest
            return CLOSED if watch.ended else None


class AsyncSubscription:
    """One asyncio client's view of a job's feed: a queue the listener's thread fills."""

    def __init__(self, queue: asyncio.Queue[_Item]) -> None:
        self._queue = queue
        self._closed = False

    async def next(self, timeout_s: float) -> JobRecord | Closed | None:
        """The newest snapshot not yet returned (older queued ones are skipped: a snapshot is
        a whole state); CLOSED once the listener stopped; None after ``timeout_s`` idle."""
        if self._closed:
            return CLOSED
        queue = self._queue
        if queue.empty():
            try:
                async with asyncio.timeout(timeout_s):  # no task per wait, as wait_for makes
                    item = await queue.get()
            except TimeoutError:
                return None
        else:
            item = queue.get_nowait()
        while not isinstance(item, str) and not queue.empty():
            following = queue.get_nowait()
            if isinstance(following, str):  # CLOSED after the newest: return that one first
                self._closed = True
                break
            item = following
        if isinstance(item, str):
            self._closed = True
        return item


class JobFeed:
    """Every job this process is streaming, each with one listener and its subscribers."""

    def __init__(self, jobs: JobStore) -> None:
        self.jobs = jobs
        self._lock = threading.Lock()
        self._watches: dict[str, _Watch] = {}

    def watching(self) -> int:
        """How many listeners are open (one per job being streamed)."""
        with self._lock:
            return len(self._watches)

    def async_subscribers(self, job_id: str | None = None) -> int:
        """How many async subscribers are waiting for snapshots of ``job_id`` (None: of any
        job)."""
        with self._lock:
            watches = (
                list(self._watches.values()) if job_id is None else [self._watches.get(job_id)]
            )
        total = 0
        for watch in watches:
            if watch is not None:
                with watch.changed:
                    total += sum(len(queues) for queues in watch.queues.values())
        return total

    @contextmanager
    def subscribe(self, job_id: str) -> Iterator[Subscription]:
        with self._lock:
            watch = self._watches.get(job_id)
            fresh = watch is None
            if watch is None:
                watch = self._watches[job_id] = _Watch(self, job_id)
            watch.subscribers += 1
        if fresh:
            watch.start()
        try:
            yield Subscription(watch)
        finally:
            with self._lock:
                watch.subscribers -= 1
                last = watch.subscribers == 0
                if last and self._watches.get(job_id) is watch:
                    del self._watches[job_id]
            if last:
                watch.close()

    @asynccontextmanager
    async def subscribe_async(self, job_id: str) -> AsyncIterator[AsyncSubscription]:
        """:meth:`subscribe` for asyncio: the blocking work (opening and closing the listener)
        runs in the loop's executor, never on the loop."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[_Item] = asyncio.Queue()
        with self._lock:
            watch = self._watches.get(job_id)
            fresh = watch is None
            if watch is None:
                watch = self._watches[job_id] = _Watch(self, job_id)
            watch.subscribers += 1
        watch.add_queue(loop, queue)
        try:
            if fresh:
                await loop.run_in_executor(None, watch.start)
            yield AsyncSubscription(queue)
        finally:
            watch.remove_queue(loop, queue)
            with self._lock:
                watch.subscribers -= 1
                last = watch.subscribers == 0
                if last and self._watches.get(job_id) is watch:
                    del self._watches[job_id]
            if last:  # not awaited: a client that left (cancelled) must not wait for it
                loop.run_in_executor(None, watch.close)

    def _forget(self, watch: _Watch) -> None:
        """An ended listener is no longer shared: the next subscriber opens a fresh one."""
        with self._lock:
            if self._watches.get(watch.job_id) is watch:
                del self._watches[watch.job_id]


_feeds: weakref.WeakKeyDictionary[object, JobFeed] = weakref.WeakKeyDictionary()
_feeds_lock = threading.Lock()


def feed_for(jobs: JobStore) -> JobFeed:
    """The process's feed for a job store (one per store, made on first use)."""
    with _feeds_lock:
        feed = _feeds.get(jobs)
        if feed is None:
            feed = _feeds[jobs] = JobFeed(jobs)
        return feed
