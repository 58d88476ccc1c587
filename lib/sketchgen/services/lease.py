"""Keeping a claimed sketch's lease while the work it was claimed for runs.

A claim's lease is short (deployed: 60 s) so that a dead worker's sketch is taken over by
the very next delivery; the live worker renews it every third of a lease for as long as it
holds the sketch (docs/decisions/0069). :class:`LeaseKeeper` runs the long waits of a
delivery (a model slot's wait, the drawing, a batch answer's stricter re-ask) on a helper
thread while the delivery's own thread keeps the lease: one renewal write on the sketch every
``lease_renew_s`` and, between them, a read every ``cancel_poll_s`` to notice a cancel.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from enum import Enum
from typing import TypeVar

from sketchgen.clock import SYSTEM_CLOCK
from sketchgen.logs import get_logger
from sketchgen.ports import Clock, JobStore
from sketchgen.services.config import ServiceConfig
from sketchgen.services.stored import SketchRecorder

__all__ = ["LOST", "LeaseKeeper", "Lost"]

log = get_logger(__name__)
T = TypeVar("T")


class Lost(Enum):
    LOST = "lost"


LOST = Lost.LOST  # the sketch was cancelled or taken over while it was held


class LeaseKeeper:
    """Holds sketches for one worker identity (the recorder's, whose writes are checked
    against the lease)."""

    def __init__(
        self,
        *,
        jobs: JobStore,
        recorder: SketchRecorder,
        config: ServiceConfig,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.jobs = jobs
        self.recorder = recorder
        self.config = config
        self.clock = clock

    def hold(self, job_id: str, index: int, work: Callable[[threading.Event], T]) -> T | Lost:
        """Run ``work`` on a helper thread while this one keeps sketch ``index``: it renews
        the lease every ``lease_renew_s`` and in between re-reads the sketch every
        ``cancel_poll_s``. ``work``'s result (or its exception), or :data:`LOST` as soon as
        the sketch is no longer this worker's (cancelled, or taken over after its lease ran
        out): ``work``'s stop event is set and whatever it still returns is dropped.

        An abandoned call runs on to its end (a sync HTTP call cannot be interrupted, and it
        is paid for either way) but makes no retry, and nothing records its result, so it can
        never overwrite the cancelled state or the new holder's result. The delivery is
        acknowledged at once, freeing the worker instead of holding it for the rest of a call.
        A renewal that fails (the store unreachable) is tried again a quarter of a renewal
        later; the lease holds for two more renewals.
        """
        stop = threading.Event()
        done: Future[T] = Future()

        def run() -> None:
            try:
                done.set_result(work(stop))
            except BaseException as error:  # handed to the waiting thread
                done.set_exception(error)

        context = contextvars.copy_context()  # the log context (job id, sketch) goes along
        threading.Thread(
            target=context.run, args=(run,), daemon=True, name=f"hold-{job_id}-{index}"
        ).start()
        renew_every = self.config.lease_renew_s
        renew_at = self.clock.monotonic() + renew_every
        while True:
            try:
                return done.result(timeout=self.config.cancel_poll_s)
            except FutureTimeout:
                pass
            now = self.clock.monotonic()
            try:
                if now >= renew_at:
                    held = self.jobs.renew_lease(
                        job_id, index, worker=self.recorder.worker_id, lease_s=self.config.lease_s
                    )
                    renew_at = now + renew_every
                else:
                    held = self.recorder.still_held(job_id, index)
            except Exception as error:  # a failed look or renewal must not fail the work
                log.warning("could not renew the lease or check for a cancel: %s", error)
                if now >= renew_at:  # the renewal is tried again soon, not at every look
                    renew_at = now + renew_every / 4
                continue
            if not held:
                stop.set()
                return LOST
