"""One job listener per job in a process, shared by every event stream of that job.

Each SSE client used to open its own listener (a Firestore watch: a gRPC stream and the SDK's
consumer thread) plus a thread copying its snapshots. A job watched by N clients now costs
one watch, whichever client came first opening it and the last one leaving closing it.

A job document is a whole state, not a delta: a subscriber needs only the newest snapshot,
so the feed keeps that one and a version number (:meth:`_Watch.take`, the one rule of what a
subscriber is handed) instead of a queue per client; a slow client skips intermediate
snapshots and still sends every event, because events come from the sketches' ``seq`` in the
newest snapshot (see :mod:`sketchgen.api.sse`).

Two kinds of subscriber share a watch and differ only in how they wait
(docs/decisions/0071-one-stream-core-two-drivers.md): a thread (:meth:`JobFeed.subscribe`, the
WSGI path of ``sketchgen serve``) waits on the watch's condition; an asyncio task
(:meth:`JobFeed.subscribe_async`, the stream function on functions-framework's ASGI stack)
waits on an ``asyncio.Event`` that the listener's thread sets through one
``loop.call_soon_threadsafe`` per loop, so an async client costs neither a thread nor a
listener (docs/decisions/0014-async-stream-function.md).
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
        # Async subscribers' wake-ups by their loop; written under ``changed``.
        self.wakers: dict[asyncio.AbstractEventLoop, set[asyncio.Event]] = {}
        self._listener: AbstractContextManager[Iterator[JobRecord]] | None = None
        self._close_lock = threading.Lock()
        self._closed = False

    def take(self, seen: int) -> tuple[_Item | None, int]:
        """What a subscriber that was last handed version ``seen`` is handed now, and the
        version it then has (caller holds ``changed``): the newest snapshot if it has not had
        it (intermediate ones are skipped: a snapshot is a whole state), else CLOSED once the
        listener stopped, else None (nothing new: it waits, or sends a heartbeat)."""
        if self.version > seen and self.latest is not None:
            return self.latest, self.version
        return (CLOSED if self.ended else None), seen

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
                    self._notify()
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
            self._notify()
        self.feed._forget(self)

    def _notify(self) -> None:
        """Wake every subscriber (caller holds ``changed``): threads through the condition,
        async ones with one wake-up per event loop, which then sets its subscribers' events
        itself."""
        self.changed.notify_all()
        for loop in self.wakers:
            with suppress(RuntimeError):  # that loop is closed: its subscribers are gone
                loop.call_soon_threadsafe(self._wake, loop)

    def _wake(self, loop: asyncio.AbstractEventLoop) -> None:
        with self.changed:
            wakers = list(self.wakers.get(loop, ()))
        for woken in wakers:
            woken.set()

    def add_waker(self, loop: asyncio.AbstractEventLoop, woken: asyncio.Event) -> None:
        """Register an async subscriber (on its loop's thread)."""
        with self.changed:
            self.wakers.setdefault(loop, set()).add(woken)

    def remove_waker(self, loop: asyncio.AbstractEventLoop, woken: asyncio.Event) -> None:
        with self.changed:
            wakers = self.wakers.get(loop)
            if wakers is not None:
                wakers.discard(woken)
                if not wakers:
                    del self.wakers[loop]

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
    """One client's view of a job's feed, on a thread."""

    def __init__(self, watch: _Watch) -> None:
        self._watch = watch
        self._seen = 0

    def next(self, timeout_s: float) -> JobRecord | Closed | None:
        """The newest snapshot not yet returned; CLOSED once the listener stopped and every
        snapshot was returned; None if nothing came within ``timeout_s`` (a heartbeat)."""
        watch = self._watch
        with watch.changed:
            item, self._seen = watch.take(self._seen)
            if item is None:
                watch.changed.wait(timeout_s)
                item, self._seen = watch.take(self._seen)
            return item


class AsyncSubscription:
    """:class:`Subscription` for an asyncio client: the same :meth:`_Watch.take`, awaiting an
    event that the listener's thread sets through the client's loop."""

    def __init__(self, watch: _Watch, woken: asyncio.Event) -> None:
        self._watch = watch
        self._woken = woken
        self._seen = 0

    async def next(self, timeout_s: float) -> JobRecord | Closed | None:
        """As :meth:`Subscription.next`."""
        item = self._take()
        if item is not None:
            return item
        try:
            async with asyncio.timeout(timeout_s):  # no task per wait, as wait_for makes
                while item is None:  # a wake-up for a snapshot already taken: wait on
                    await self._woken.wait()
                    item = self._take()
        except TimeoutError:
            return None
        return item

    def _take(self) -> JobRecord | Closed | None:
        watch = self._watch
        with watch.changed:
            item, self._seen = watch.take(self._seen)
            if item is None:  # any later snapshot's wake-up is scheduled after this
                self._woken.clear()
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
                    total += sum(len(wakers) for wakers in watch.wakers.values())
        return total

    @contextmanager
    def subscribe(self, job_id: str) -> Iterator[Subscription]:
        watch, fresh = self._join(job_id)
        try:
            if fresh:
                watch.start()
            yield Subscription(watch)
        finally:
            if self._leave(watch):
                watch.close()

    @asynccontextmanager
    async def subscribe_async(self, job_id: str) -> AsyncIterator[AsyncSubscription]:
        """:meth:`subscribe` for asyncio: the blocking work (opening and closing the listener)
        runs in the loop's executor, never on the loop."""
        loop = asyncio.get_running_loop()
        woken = asyncio.Event()
        watch, fresh = self._join(job_id)
        watch.add_waker(loop, woken)
        try:
            if fresh:
                await loop.run_in_executor(None, watch.start)
            yield AsyncSubscription(watch, woken)
        finally:
            watch.remove_waker(loop, woken)
            if self._leave(watch):  # not awaited: a client that left (cancelled) must not wait
                loop.run_in_executor(None, watch.close)

    def _join(self, job_id: str) -> tuple[_Watch, bool]:
        """The job's watch with one more subscriber, and whether it is new (to be started)."""
        with self._lock:
            watch = self._watches.get(job_id)
            fresh = watch is None
            if watch is None:
                watch = self._watches[job_id] = _Watch(self, job_id)
            watch.subscribers += 1
        return watch, fresh

    def _leave(self, watch: _Watch) -> bool:
        """One subscriber fewer; True if it was the last (the caller closes the listener)."""
        with self._lock:
            watch.subscribers -= 1
            last = watch.subscribers == 0
            if last and self._watches.get(watch.job_id) is watch:
                del self._watches[watch.job_id]
        return last

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
