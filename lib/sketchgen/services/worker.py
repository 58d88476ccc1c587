"""The worker: one queue message, one sketch — claim it, wait for quota, draw, record.

A duplicate or redelivered message does no second model call: the claim (a lease in the job
document) decides who draws, and the recorder checks the lease again before it writes. The
lease is short and the delivery renews it while it holds the sketch (docs/decisions/0069): a
dead worker's sketch is taken over by the next delivery; a live one's never is; a hung one's
is given back once the delivery's budget has passed (docs/decisions/0073).
"""

from __future__ import annotations

import threading

from sketchgen.clock import SYSTEM_CLOCK
from sketchgen.errors import ModelError
from sketchgen.generate.pipeline import draw_sketch
from sketchgen.jobs import Claim, ClaimResult, JobRecord, SketchState, sketch_cost_usd
from sketchgen.logs import get_logger, log_context
from sketchgen.ports import (
    Clock,
    ImageModel,
    ImageRequest,
    ImageResponse,
    JobStore,
    SketchTask,
    SyncImageModel,
    TaskQueue,
)
from sketchgen.quota import GatedModel, QuotaGate
from sketchgen.services.config import ServiceConfig
from sketchgen.services.lease import LOST, TIMED_OUT, LeaseKeeper
from sketchgen.services.stored import SketchRecorder, StoredJobs

__all__ = ["SketchWorker"]

log = get_logger(__name__)


class SketchWorker:
    def __init__(
        self,
        *,
        jobs: JobStore,
        queue: TaskQueue,
        model: ImageModel,
        stored: StoredJobs,
        recorder: SketchRecorder,
        config: ServiceConfig | None = None,
        gate: QuotaGate | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.jobs = jobs
        self.clock = clock
        self.queue = queue
        self.model = model
        self.stored = stored
        self.recorder = recorder
        self.config = config or ServiceConfig()
        self.gate = gate
        # Keeps a claimed sketch's lease while the delivery waits on a slot or the drawing.
        self.lease = LeaseKeeper(jobs=jobs, recorder=recorder, config=self.config, clock=clock)

    @property
    def worker_id(self) -> str:
        """Who this worker claims as: the recorder's identity, so its writes are accepted."""
        return self.recorder.worker_id

    def run_sketch(self, task: SketchTask) -> bool:
        """Make one sketch. True acknowledges the message; False has it redelivered."""
        with log_context(job_id=task.job_id, sketch=task.index):
            claim = self._claim_waiting_out_leases(task)
            if claim.claim is Claim.MISSING:
                log.warning("dropping a task for a job or sketch that does not exist")
                return True
            if claim.claim is Claim.LEASED:
                return False  # still held after waiting: let the queue try again later
            job = claim.job
            assert job is not None
            if claim.claim is Claim.ALREADY_ENDED:
                if claim.finalize:  # this claim ended the last sketches (cancel, deadline)
                    self.stored.finalize_job(job.job_id)
                    return True
                return self._finalize_if_abandoned(job)
            return self._draw_releasing_on_error(job, task.index, claim.attempt)

    def _draw_releasing_on_error(self, job: JobRecord, index: int, delivery: int) -> bool:
        """Draw the claimed sketch; if this delivery fails with an exception, the lease is
        given back at once, so the queue's next delivery takes the sketch over instead of
        waiting out the lease (the calls already sent stay counted)."""
        try:
            return self._draw_claimed(job, index, delivery)
        except Exception as error:
            log.warning("delivery failed after its claim, releasing the sketch: %s", error)
            try:
                self.jobs.release_sketch(job.job_id, index, worker=self.worker_id, error=str(error))
            except Exception as release_error:  # the lease then simply runs out
                log.warning("could not release the sketch: %s", release_error)
            raise

    def _finalize_if_abandoned(self, job: JobRecord) -> bool:
        """This delivery's sketch has ended; if every sketch of ``job`` has, see that the job
        ends too. True acknowledges the delivery.

        The delivery that ended the last sketch created the job's final marker and
        finalises; a duplicate must not race it (each would write the job's document), so
        this one waits for it, as a delivery waits out a live lease (up to the lease wait,
        polling). A finaliser that failed (its delivery ended in an error, the marker stays
        taken) or died is replaced once the job has been left unfinished for the grace.
        Neither yet: the delivery is handed back, so the queue brings it again later;
        acknowledged, the job would stay unfinished until a sweep."""
        give_up = self.clock.monotonic() + self.config.lease_wait_s
        while job.all_ended and not job.is_final:  # else: other sketches' deliveries finish
            if (self.clock.now() - job.updated_at).total_seconds() >= self.config.finalize_grace_s:
                self.stored.finalize_job(job.job_id)
                return True
            remaining = give_up - self.clock.monotonic()
            if remaining <= 0:
                return False
            self.clock.sleep(min(self.config.lease_poll_s, remaining))
            reread = self.jobs.get_job(job.job_id)
            if reread is None:  # deleted meanwhile: nothing left to finish
                return True
            job = reread
        return True

    def fail_undeliverable(self, task: SketchTask, deliveries: int | None) -> bool:
        """A task Pub/Sub gave up on (its dead-letter topic): the sketch ends ``failed`` with
        the reason, instead of waiting for a sweep that would only queue it again.
        True acknowledges the dead letter; False (a live worker still holds it) retries."""
        with log_context(job_id=task.job_id, sketch=task.index):
            claim = self.jobs.claim_sketch(
                task.job_id, task.index, worker=self.worker_id, lease_s=self.config.lease_s
            )
            if claim.claim is Claim.LEASED:
                return False
            job = claim.job
            if claim.claim is Claim.MISSING or job is None:
                return True
            if claim.claim is Claim.ALREADY_ENDED:
                if claim.finalize:
                    self.stored.finalize_job(job.job_id)
                    return True
                return self._finalize_if_abandoned(job)
            tries = f"{deliveries} deliveries" if deliveries else "every delivery"
            calls = max(0, job.sketch(task.index).model_calls - 1)  # the calls sent before
            log.error("dead letter: the worker failed %s of this sketch", tries)
            state = SketchState(
                status="failed",
                error=f"undeliverable: the worker failed {tries}; see the worker's logs",
                finish_reason="UNDELIVERABLE",
                attempts=max(0, claim.attempt - 1),  # this claim made no model call
                model_calls=calls,
                cost_usd=sketch_cost_usd(job, calls),
            )
            result = self.jobs.finish_sketch(
                job.job_id, task.index, worker=self.worker_id, state=state
            )
            if result.accepted and result.finalize:
                self.stored.finalize_job(job.job_id)
            return True

    def _claim_waiting_out_leases(self, task: SketchTask) -> ClaimResult:
        """Claim, and while another worker holds the lease, wait for it to end or expire.

        A live holder finishes (this delivery then sees ALREADY_ENDED and acks); a dead one's
        lease expires and this delivery takes the sketch over.
        """
        give_up = self.clock.monotonic() + self.config.lease_wait_s
        while True:
            claim = self.jobs.claim_sketch(
                task.job_id, task.index, worker=self.worker_id, lease_s=self.config.lease_s
            )
            remaining = give_up - self.clock.monotonic()
            if claim.claim is not Claim.LEASED or remaining <= 0:
                return claim
            self.clock.sleep(min(self.config.lease_poll_s, remaining))

    def _draw_claimed(self, job: JobRecord, index: int, delivery: int) -> bool:
        # The plan stored when the job was admitted, as it is (nothing planned again); only
        # the images it names are read, once, for this drawing.
        plan = self.stored.job_plan(job)
        request = plan.request(index, self.stored.images(plan))
        model: SyncImageModel = self.model
        if self.gate is not None:
            # The slot is taken last, right before the call: whatever ran before it (claim,
            # plan, references) would otherwise bunch calls that were spaced as slots. The
            # wait (up to quota_wait_s) is longer than a renewal: the lease is kept meanwhile.
            wait_s = self.config.quota_wait_s
            gate = self.gate
            self.model.prepare()
            slot = self.lease.hold(
                job.job_id,
                index,
                lambda _stop: gate.acquire(request.model, job.owner_uid, max_wait_s=wait_s),
                sent_nothing=lambda: True,  # hung before its call: the claim's call is refunded
            )
            if slot is LOST:
                log.info("the sketch ended while this delivery waited for a model slot")
                return True
            if slot is TIMED_OUT:
                return False  # given back: the next delivery takes it over
            if slot is None:
                return self._later_for_quota(job, index)
            model = GatedModel(self.model, gate, job.owner_uid, wait_s, admitted=True)
        meter = _Meter(self, job, index)
        recording = threading.Event()

        def draw_and_record(stop: threading.Event) -> bool:
            stoppable = _Stoppable(model, stop, meter)
            outcome = draw_sketch(stoppable, request, self.config.retry, job.job_id)
            if stop.is_set():
                return True  # abandoned: the hold has answered already, nothing is recorded
            recording.set()  # the lease is kept through the upload and the sketch's write too
            return self.recorder.record(job, index, delivery, outcome, calls_sent=meter.sent)

        # Hung before its first call was sent, the claim's counted call is given back.
        recorded = self.lease.hold(
            job.job_id,
            index,
            draw_and_record,
            sent_nothing=lambda: meter.sent == 0,
            recording=recording,
        )
        if recorded is LOST:
            log.info(
                "the sketch is no longer this worker's (cancelled, or taken over): "
                "the call is abandoned"
            )
            return True
        if recorded is TIMED_OUT:
            return False  # hung, given back: the next delivery draws it
        assert isinstance(recorded, bool)
        return recorded

    def _later_for_quota(self, job: JobRecord, index: int) -> bool:
        """No model slot in time: give the sketch back unspent and answer "later".

        The queue delivers it again after its retry policy's backoff (doubling from the
        subscription's minimum; docs/decisions/0055), so a quota that stays short spaces its
        refusals out instead of turning each into an immediate redelivery. The claim's attempt
        and call are refunded: the worker's own count of draws (``max_deliveries``) is not
        spent; the subscription's dead-letter limit, which counts every refusal, is set above
        it (Terraform: ``local.subscription_delivery_attempts``).
        """
        log.info(
            "no model slot within %.0f s: back in the queue after its backoff",
            self.config.quota_wait_s,
        )
        self.jobs.release_sketch(job.job_id, index, worker=self.worker_id, error=None, refund=True)
        return False


class _Meter:
    """Charges one delivery's model calls as they are sent (docs/decisions/0025).

    The claim counted the delivery's first call; each further one (a retry, the stricter
    re-ask, a guard redraw) is counted on the sketch before it is sent. A sketch's first call
    is paid by the images reserved at submission; every later one (in this delivery or a
    redelivery) is admitted against the owner's budget as it is sent, or not made.
    """

    def __init__(self, worker: SketchWorker, job: JobRecord, index: int) -> None:
        self.worker = worker
        self.job = job
        self.index = index
        self.calls = job.sketch(index).model_calls  # the claim's call included
        self.sent = 0

    def before_call(self) -> None:
        if self.sent > 0:
            counted = self.worker.jobs.count_call(
                self.job.job_id, self.index, worker=self.worker.worker_id
            )
            if not counted.held:
                raise ModelError("abandoned: the sketch was cancelled", finish_reason="CANCELLED")
            self.calls = counted.calls
        spend = self.worker.stored.spend
        if (
            spend is not None
            and self.calls > 1  # beyond the call reserved at submission
            and not spend.admit_extra_call(
                self.job.owner_uid,
                self.job.job_id,
                usd=sketch_cost_usd(self.job, 1),  # this one call, by the one cost rule
            )
        ):
            raise ModelError(
                "today's image budget is spent: no further model call for this sketch",
                finish_reason="BUDGET_EXHAUSTED",
            )
        self.sent += 1


class _Stoppable:
    """The model for one drawing, refusing further calls (retries, the stricter re-ask) once
    the worker abandoned it, and charging each call it makes before sending it."""

    def __init__(self, model: SyncImageModel, stop: threading.Event, meter: _Meter) -> None:
        self._model = model
        self._stop = stop
        self._meter = meter

    def generate_image(self, request: ImageRequest) -> ImageResponse:
        if self._stop.is_set():
            raise ModelError("abandoned: the sketch was cancelled", finish_reason="CANCELLED")
        self._meter.before_call()
        if self._stop.is_set():  # abandoned while the call was admitted (a hung store)
            raise ModelError("abandoned: the sketch was given up", finish_reason="CANCELLED")
        return self._model.generate_image(request)
