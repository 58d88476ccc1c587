"""Keeping a claimed sketch's lease while the work it was claimed for runs.

A claim's lease is short (deployed: 60 s) so that a dead worker's sketch is taken over by
the very next delivery; the live worker renews it every third of a lease while its work runs
within the delivery's budget (docs/decisions/0069, 0073). :class:`LeaseKeeper` runs the long
waits of a delivery (a model slot's wait, the drawing, a batch answer's stricter re-ask) on a
helper thread while the delivery's own thread keeps the lease: one renewal write on the sketch
every ``lease_renew_s`` and, between them, a read every ``cancel_poll_s`` to notice a cancel.
A work still running ``hold_max_s`` after it began (all a delivery may spend after its claim)
has hung: the lease is given back and the sketch goes to the next delivery.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from enum import Enum
from typing import TypeVar

from sketchgen import telemetry
from sketchgen.clock import SYSTEM_CLOCK
from sketchgen.logs import get_logger
from sketchgen.ports import Clock, JobStore
from sketchgen.services.config import ServiceConfig
from sketchgen.services.stored import SketchRecorder

__all__ = ["LOST", "TIMED_OUT", "LeaseKeeper", "Lost", "TimedOut"]

log = get_logger(__name__)
T = TypeVar("T")


class Lost(Enum):
    LOST = "lost"


LOST = Lost.LOST  # the sketch was cancelled or taken over while it was held


class TimedOut(Enum):
    TIMED_OUT = "timed_out"


# The work ran past the delivery's budget (hung): the sketch was given back for the next
# delivery, which the delivery that held it must ask for ("later", not an ack).
TIMED_OUT = TimedOut.TIMED_OUT


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

    def hold(
        self,
        job_id: str,
        index: int,
        work: Callable[[threading.Event], T],
        *,
        sent_nothing: Callable[[], bool] = lambda: False,
        recording: threading.Event | None = None,
    ) -> T | Lost | TimedOut:
        """Run ``work`` on a helper thread while this one keeps sketch ``index``: it renews
        the lease every ``lease_renew_s`` and in between re-reads the sketch every
        ``cancel_poll_s``. ``work``'s result (or its exception), or :data:`LOST` as soon as
        the sketch is no longer this worker's (cancelled, or taken over after its lease ran
        out): ``work``'s stop event is set and whatever it still returns is dropped.

        The lease is kept for at most ``hold_max_s`` (docs/decisions/0073): a work still
        running then has hung (a call or an upload that never answers; Cloud Run's request
        timeout answers the push but does not stop the thread). Its stop event is set, the
        sketch is released at once so the next delivery takes it over without waiting out a
        lease, and :data:`TIMED_OUT` is returned: the delivery asks to be redelivered. The
        model calls sent stay counted; ``sent_nothing`` says the work sent none (it hung
        before its first call): the claim's counted call and attempt are given back then.

        An abandoned call (lost or hung) runs on to its end (Python cannot stop a thread, a
        sync HTTP call cannot be interrupted, and it is paid for either way) but makes no
        retry, and nothing records its result, so it can never overwrite the cancelled state
        or the new holder's result. A lost sketch's delivery is acknowledged at once, freeing
        the worker instead of holding it for the rest of a call.
        A renewal that fails (the store unreachable) is tried again a quarter of a renewal
        later; the lease holds for two more renewals.

        ``recording``, set by the work once it stores its result (the upload and the sketch's
        write), keeps the lease renewed through them too, and from then on the hold waits for
        the work's answer instead of returning :data:`LOST`: the work's own write ends the
        sketch, and the recorder checks the lease before it writes. A slow upload can then not
        outlast the lease and have a duplicate delivery draw the sketch again; the delivery's
        budget (``hold_max_s``, whose overhead counts the record and upload) still bounds it.
        """
        stop = threading.Event()
        done: Future[T] = Future()

        def run() -> None:
            try:
                done.set_result(work(stop))
            except BaseException as error:  # handed to the waiting thread
                done.set_exception(error)

        context = contextvars.copy_context()  # the log context (job id, sketch) goes along
        started = self.clock.monotonic()
        threading.Thread(
            target=context.run, args=(run,), daemon=True, name=f"hold-{job_id}-{index}"
        ).start()
        renew_every = self.config.lease_renew_s
        renew_at = started + renew_every
        give_up_at = started + self.config.hold_max_s
        while True:
            try:
                return done.result(timeout=self.config.cancel_poll_s)
            except FutureTimeout:
                pass
            now = self.clock.monotonic()
            if now >= give_up_at:
                stop.set()
                self._give_back(job_id, index, now - started, refund=sent_nothing())
                return TIMED_OUT
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
            if not held and not (recording is not None and recording.is_set()):
                stop.set()
                return LOST

    def _give_back(self, job_id: str, index: int, held_s: float, *, refund: bool) -> None:
        """Release a sketch whose work hung, for the next delivery to take over at once
        (counted in ``sketchgen.holds.given_up``, which an alert watches)."""
        telemetry.instruments().holds_given_up.add(1)
        log.warning(
            "the work on sketch %d of job %s still runs after %.0f s (the delivery's budget is "
            "%.0f s): it is abandoned and the sketch released for the next delivery",
            index,
            job_id,
            held_s,
            self.config.hold_max_s,
        )
        try:
            self.jobs.release_sketch(
                job_id,
                index,
                worker=self.recorder.worker_id,
                error=f"the delivery's work hung for {held_s:.0f} s",
                refund=refund,
            )
        except Exception as error:  # the lease, no longer renewed, then simply runs out
            log.warning("could not release the sketch: %s", error)
