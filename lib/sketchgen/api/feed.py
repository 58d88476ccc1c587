"""One job listener per job in a process, shared by every event stream of that job.

Each SSE client used to open its own listener (a Firestore watch: a gRPC stream and the SDK's
consumer thread) plus a thread copying its snapshots. A job watched by N clients now costs
one watch, whichever client came first opening it and the last one leaving closing it.

A job document is a whole state, not a delta: a subscriber needs only the newest snapshot,
so the feed keeps that one (and a version number) instead of a queue per client; a slow
client skips intermediate snapshots and still sends every event, because events come from
the sketches' ``seq`` in the newest snapshot (see :mod:`sketchgen.api.sse`).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Literal

from sketchgen.jobs import JobRecord
from sketchgen.logs import get_logger
from sketchgen.ports import JobStore

__all__ = ["JobFeed", "Subscription", "feed_for"]

log = get_logger(__name__)

Closed = Literal["closed"]
CLOSED: Closed = "closed"


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
        self._listener: AbstractContextManager[Iterator[JobRecord]] | None = None
        self._close_lock = threading.Lock()
        self._closed = False

    def start(self) -> None:
        # The listener is opened here, on the subscriber's thread, so the subscriber's first
        # wait finds it open; the thread then only copies snapshots.
        try:
            self._listener = self.feed.jobs.watch_job(self.job_id)
            snapshots = self._listener.__enter__()
        except Exception as error:
            log.warning("job listener failed to open: %s", error)
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
        self.feed._forget(self)

    def close(self) -> None:
        """Close the listener once, from whichever thread gets here first (the last
        subscriber leaving, or the listener's own thread when the job ended)."""
        with self._close_lock:
            if self._closed or self._listener is None:
                return
            self._closed = True
            listener = self._listener
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
