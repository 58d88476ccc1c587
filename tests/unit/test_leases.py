"""Leases that hand over (issue 24 item 3), on a fake clock with the deployed timing.

The timing is the cloud's: ``infra/functions.yaml`` (``delivery:``) through
:class:`sketchgen.timing.DeliveryTiming`, as Terraform and ``make dev`` derive theirs. The
lease is short and renewed by the live worker (docs/decisions/0069): a dead worker's sketch
is taken over by the very next delivery, a live one's is never taken.
"""

from __future__ import annotations

import contextvars
import itertools
import math
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from dev.definition import load_definition
from sketchgen.adapters.local.blob_store import LocalBlobStore
from sketchgen.adapters.local.job_store import MemoryJobStore
from sketchgen.adapters.local.quota_gate import MemoryQuotaGate
from sketchgen.adapters.local.task_queue import InlineTaskQueue
from sketchgen.bootstrap import assemble
from sketchgen.errors import StorageError
from sketchgen.generate.retry import RetryPolicy
from sketchgen.jobs import Claim, JobRequest, SketchState, sketch_cost_usd
from sketchgen.ports import ImageRequest, ImageResponse, SketchTask
from sketchgen.quota import Decision, QuotaPolicy
from sketchgen.services import ServiceConfig, SketchService
from sketchgen.services.lease import TIMED_OUT
from sketchgen.styles import StyleRegistry
from sketchgen.testing.clock import FakeClock
from sketchgen.timing import DeliveryTiming, queue_delivery_attempts
from tests.helpers.fakes import CollectingQueue, FakeImageModel, published
from tests.helpers.telemetry import Telemetry

MODEL_TIMEOUT_S = 120.0  # Terraform's default (var.model_timeout_s)
TIMING = load_definition().timing(model_timeout_s=MODEL_TIMEOUT_S)


def _config(timing: DeliveryTiming, **real: Any) -> ServiceConfig:
    """The worker's settings as the deployment sets them from ``timing`` (``real``: the
    settings in real seconds, such as how often a worker waiting on its drawing looks up)."""
    return ServiceConfig(
        lease_s=timing.lease_s,
        lease_wait_s=timing.lease_wait_s,
        quota_wait_s=timing.quota_wait_s,
        model_timeout_s=timing.model_timeout_s,
        worker_overhead_s=timing.worker_overhead_s,
        retry=RetryPolicy(max_attempts=1),
        **real,
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime.now(UTC))  # a job's deadline is set from its creation time


@pytest.fixture
def build(
    tmp_path: Path, style_registry: StyleRegistry, clock: FakeClock
) -> Callable[..., SketchService]:
    def make(
        config: ServiceConfig,
        model: FakeImageModel,
        gate: MemoryQuotaGate | None = None,
        jobs: MemoryJobStore | None = None,
        blobs: LocalBlobStore | None = None,
    ):
        return assemble(
            gate=gate,
            clock=clock,
            jobs=jobs or MemoryJobStore(clock=clock),
            blobs=blobs or LocalBlobStore(tmp_path / "blobs"),
            queue=CollectingQueue(),
            model=model,
            styles=style_registry,
            config=config,
        )

    return make


def _request(n: int) -> JobRequest:
    return JobRequest(brief="playful golf mascot", style_id="test-ink", num_images=n)


def test_the_deployed_timing_hands_over() -> None:
    assert TIMING.problems() == []
    # The numbers this file's scenarios rely on, as deployed (Terraform's default timeout): a
    # lease far shorter than a delivery, which the next delivery outwaits.
    assert TIMING.worker_timeout_s == TIMING.ack_deadline_s
    assert TIMING.lease_s <= TIMING.minimum_backoff_s + TIMING.lease_wait_s
    assert TIMING.lease_renew_s < TIMING.lease_s < TIMING.worker_timeout_s


@pytest.mark.parametrize(
    "died_s",
    [0.0, TIMING.ack_deadline_s],
    ids=["crashed-right-after-its-claim", "hung-until-its-request-timed-out"],
)
def test_a_dead_workers_sketch_is_taken_over_by_the_next_delivery(
    build: Callable[..., SketchService], clock: FakeClock, died_s: float
) -> None:
    model = FakeImageModel()
    service = build(_config(TIMING), model)
    job, _ = service.submission.submit_job("alice", _request(1))
    (task,) = published(service)
    # A worker claims the sketch and dies holding it: no release, no model call. Crashed at
    # once, Cloud Run answers the push with an error right away; hung, its request ends by the
    # timeout (the ack deadline). Pub/Sub pushes again no sooner than the retry policy's
    # minimum backoff after that: the very next delivery.
    dead = service.jobs.claim_sketch(job.job_id, 0, worker="dead", lease_s=TIMING.lease_s)
    assert dead.claim is Claim.CLAIMED
    clock.advance(died_s + TIMING.minimum_backoff_s)
    started = clock.monotonic()
    assert service.worker.run_sketch(task)  # this delivery draws it: not "later"
    waited = clock.monotonic() - started
    assert waited <= TIMING.lease_wait_s
    if died_s == 0:
        assert waited > 0  # it waited out the rest of the dead one's (short) lease
    done = service.submission.get_job("alice", job.job_id)
    assert done.status == "done" and done.sketch(0).attempts == 2
    assert len(model.requests) == 1


def test_a_lease_longer_than_the_handover_allows_is_found(
    build: Callable[..., SketchService], clock: FakeClock
) -> None:
    """The early crash above fails for a lease the next delivery cannot outwait — the lease
    as long as the request that was not renewed (ADR 0054: 450 s): the check says so, and the
    next delivery answers "later"."""
    unrenewed = replace(TIMING, lease_s=TIMING.worker_timeout_s + 30)
    assert any("cannot wait out its lease" in p for p in unrenewed.problems())
    service = build(_config(unrenewed), FakeImageModel())
    job, _ = service.submission.submit_job("alice", _request(1))
    (task,) = published(service)
    service.jobs.claim_sketch(job.job_id, 0, worker="dead", lease_s=unrenewed.lease_s)
    clock.advance(unrenewed.minimum_backoff_s)
    assert service.worker.run_sketch(task) is False


class _WatchedJobs(MemoryJobStore):
    """A memory store that tells the test the fake time of each look the worker takes at its
    sketch while it waits on its drawing (a cancel check, a renewal, the release of a hung
    work), and can fail renewals (the worker cut off from the store)."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock=clock)
        self.fake_clock = clock
        self._looked = threading.Condition()
        self._last_look = -1.0
        self._looks_then = 0  # looks taken at _last_look
        self.renewals: list[tuple[float, str, bool]] = []
        self.fail_renewals = False
        self.lost = False
        self.released: list[tuple[float, str]] = []

    def _saw(self, at: float) -> None:
        with self._looked:
            if at > self._last_look:
                self._last_look, self._looks_then = at, 0
            self._looks_then += at == self._last_look
            self._looked.notify_all()

    def get_sketch(self, job_id: str, index: int) -> SketchState | None:
        at = self.fake_clock.monotonic()
        state = super().get_sketch(job_id, index)
        self._saw(at)
        return state

    def renew_lease(self, job_id: str, index: int, **kwargs: Any) -> bool:
        at = self.fake_clock.monotonic()
        if self.fail_renewals:
            self._saw(at)
            raise StorageError("the store is unreachable")
        renewed = super().renew_lease(job_id, index, **kwargs)
        self.renewals.append((at, kwargs["worker"], renewed))
        self.lost = self.lost or not renewed
        self._saw(at)
        return renewed

    def release_sketch(self, job_id: str, index: int, **kwargs: Any) -> None:
        at = self.fake_clock.monotonic()
        super().release_sketch(job_id, index, **kwargs)
        self.released.append((at, kwargs["worker"]))
        self._saw(at)

    def let_go(self) -> bool:
        """The worker no longer holds its sketch: its renewal was refused, or it released it."""
        return self.lost or bool(self.released)

    def wait_for_a_look(self, looks: int = 1) -> None:
        """Until the worker has looked at its sketch at the clock's present time (or let it go).

        One look may come from a round of the worker's that read the clock just before it
        moved on; with ``looks=2`` a whole round has run at the present time (what is due now,
        a renewal or giving the sketch back, is done, at this time)."""
        now = self.fake_clock.monotonic()

        def seen_now() -> bool:
            later = self._last_look > now
            return later or (self._last_look == now and self._looks_then >= looks)

        with self._looked:
            seen = self._looked.wait_for(lambda: seen_now() or self.let_go(), timeout=30)
        assert seen, "the worker stopped looking at its sketch while it drew"


class _DrawingForLong(FakeImageModel):
    """A model call that lasts as long as ``script`` moves the fake clock on."""

    def __init__(self, script: Callable[[], None]) -> None:
        super().__init__()
        self.script = script
        self.ended = threading.Event()

    def generate_image(self, request: ImageRequest) -> ImageResponse:
        try:
            self.script()
            return super().generate_image(request)
        finally:
            self.ended.set()


def test_a_live_worker_drawing_longer_than_its_lease_keeps_its_sketch(
    build: Callable[..., SketchService], clock: FakeClock
) -> None:
    """The model draws for three leases; the worker renews every third of one (one write on
    the sketch each 20 s, not each look), so another delivery's claim two leases in finds the
    sketch held, and the sketch is drawn once."""
    jobs = _WatchedJobs(clock)
    draw_s, step_s = 3 * TIMING.lease_s, 5.0
    rivals: list[Claim] = []
    job_ids: list[str] = []

    def draw() -> None:
        for step in range(1, int(draw_s / step_s) + 1):
            clock.advance(step_s)
            jobs.wait_for_a_look()
            if step * step_s in (2 * TIMING.lease_s, draw_s):
                rival = jobs.claim_sketch(job_ids[0], 0, worker="rival", lease_s=TIMING.lease_s)
                rivals.append(rival.claim)

    model = _DrawingForLong(draw)
    service = build(_config(TIMING, cancel_poll_s=0.001), model, jobs=jobs)
    job, _ = service.submission.submit_job("alice", _request(1))
    job_ids.append(job.job_id)
    (task,) = published(service)
    started = clock.monotonic()
    assert service.worker.run_sketch(task)
    assert clock.monotonic() - started >= draw_s > TIMING.lease_s
    assert rivals == [Claim.LEASED, Claim.LEASED]
    done = service.submission.get_job("alice", job.job_id)
    assert done.status == "done" and done.sketch(0).attempts == 1
    assert len(model.requests) == 1
    # Renewed, each time by the worker, about every lease_renew_s: no more often.
    assert all(worker == service.worker.worker_id and ok for _, worker, ok in jobs.renewals)
    times = [at - started for at, _, _ in jobs.renewals]
    assert len(times) >= draw_s / TIMING.lease_renew_s - 1
    assert all(b - a >= TIMING.lease_renew_s for a, b in itertools.pairwise(times))


def test_a_worker_whose_lease_was_taken_over_drops_its_drawing(
    build: Callable[..., SketchService], clock: FakeClock
) -> None:
    """Cut off from the store, the worker cannot renew; its lease runs out and the next
    delivery takes the sketch over. The worker's next renewal is refused: it stops, records
    nothing and stores no PNG, and acknowledges (the new holder draws)."""
    jobs = _WatchedJobs(clock)
    step_s = 5.0
    takeover: list[Claim] = []
    job_ids: list[str] = []

    def draw() -> None:
        jobs.fail_renewals = True
        while not takeover:
            clock.advance(step_s)
            jobs.wait_for_a_look()
            if clock.monotonic() - started > TIMING.lease_s:
                rival = jobs.claim_sketch(job_ids[0], 0, worker="rival", lease_s=TIMING.lease_s)
                takeover.append(rival.claim)
        jobs.fail_renewals = False
        while not jobs.lost:
            clock.advance(step_s)
            jobs.wait_for_a_look()

    model = _DrawingForLong(draw)
    service = build(_config(TIMING, cancel_poll_s=0.001), model, jobs=jobs)
    job, _ = service.submission.submit_job("alice", _request(1))
    job_ids.append(job.job_id)
    (task,) = published(service)
    started = clock.monotonic()
    assert service.worker.run_sketch(task)  # acknowledged: the sketch is the rival's now
    assert model.ended.wait(timeout=30)
    assert takeover == [Claim.CLAIMED]
    assert jobs.renewals and jobs.renewals[-1][1:] == (service.worker.worker_id, False)
    state = service.submission.get_job("alice", job.job_id).sketch(0)
    assert state.status == "running" and state.lease_owner == "rival" and state.attempts == 2
    assert state.path is None
    assert not list((service.blobs.root).rglob("*.png"))  # type: ignore[attr-defined]
    assert len(model.requests) == 1


def test_an_error_in_the_quota_gate_after_the_claim_releases_the_lease(
    build: Callable[..., SketchService], clock: FakeClock
) -> None:
    class BrokenGate(MemoryQuotaGate):
        broken = True

        def reserve(self, key: str, uid: str) -> Decision:
            if BrokenGate.broken:
                BrokenGate.broken = False
                raise StorageError("quota shard unavailable")
            return super().reserve(key, uid)

    model = FakeImageModel()
    gate = BrokenGate(QuotaPolicy(rpm=60), clock=clock)
    service = build(_config(TIMING), model, gate)
    job, _ = service.submission.submit_job("alice", _request(1))
    (task,) = published(service)
    with pytest.raises(StorageError):
        service.worker.run_sketch(task)
    released = service.submission.get_job("alice", job.job_id).sketch(0)
    assert released.status == "pending" and released.lease_owner is None
    started = clock.monotonic()
    assert service.worker.run_sketch(task)  # the next delivery: no lease to wait out
    assert clock.monotonic() - started < TIMING.lease_wait_s
    assert service.submission.get_job("alice", job.job_id).status == "done"
    assert len(model.requests) == 1


def test_quota_refusals_come_back_after_a_growing_backoff_not_at_once(
    build: Callable[..., SketchService], clock: FakeClock
) -> None:
    """Five sketches find no model slot for 300 s (the model said 429, retry in 300 s). Each
    delivery answers "later" at once; the queue, like the subscription's retry policy, brings
    each back after 10 s, 20 s, 40 s ...: a handful of deliveries, not a storm of them."""
    sketches, hold_s = 5, 300.0
    gate = MemoryQuotaGate(QuotaPolicy(rpm=60, horizon_s=5), clock=clock)
    model = FakeImageModel()
    service = build(_config(TIMING), model, gate)
    job, _ = service.submission.submit_job("alice", _request(sketches))
    gate.hold(job.plan.model_id, hold_s)
    queue = InlineTaskQueue(
        1,
        max_deliveries=queue_delivery_attempts(5),
        backoff_s=TIMING.minimum_backoff_s,
        max_backoff_s=TIMING.maximum_backoff_s,
        clock=clock,
    )
    deliveries: dict[int, list[tuple[float, bool]]] = defaultdict(list)
    lock = threading.Lock()

    def handler(task: SketchTask) -> bool:
        at = clock.monotonic()
        acked = service.worker.run_sketch(task)
        with lock:
            deliveries[task.index].append((at, acked))
        return acked

    start = clock.monotonic()
    queue.bind(handler)
    try:
        queue.publish(published(service))
        assert queue.join(timeout=60)
    finally:
        queue.close()
    assert not queue.dead_letters
    assert service.submission.get_job("alice", job.job_id).status == "done"
    assert len(model.requests) == sketches  # one call a sketch: refusals cost none
    for index, seen in deliveries.items():
        times = [at - start for at, _ in seen]
        assert [acked for _, acked in seen] == [False] * (len(seen) - 1) + [True], index
        # The n-th refusal is followed by at least the n-th backoff: 10 s, 20 s, 40 s ...
        for n, (before, after) in enumerate(itertools.pairwise(times), start=1):
            assert after - before >= TIMING.backoff_s(n) - 1e-6, (index, times)
        # 300 s of refusals take at most log2(300 / 10) + 2 deliveries, not hundreds.
        assert len(seen) <= 7, (index, times)


# -- a hung worker gives its sketch back (docs/decisions/0073) -----------------------------------


class _OnItsOwnThread:
    """A call (a hold, a delivery) run on its own thread, so the test's thread can move the
    fake clock on while the delivery's thread keeps its lease."""

    def __init__(self, call: Callable[[], Any]) -> None:
        self.result: list[Any] = []
        context = contextvars.copy_context()  # the test's telemetry providers go along
        self.thread = threading.Thread(
            target=context.run, args=(lambda: self.result.append(call()),), daemon=True
        )
        self.thread.start()

    def returned(self) -> bool:
        # A guard, not a wait: the call has returned, or it runs on after its time is up.
        self.thread.join(timeout=30)
        return not self.thread.is_alive()


STEP_S = 5.0


def _pass_time(
    clock: FakeClock, jobs: _WatchedJobs, running: _OnItsOwnThread, for_s: float
) -> None:
    """Move the fake clock ``for_s`` on in steps of ``STEP_S``, after each until the worker has
    looked at its sketch a whole round at the new time; stop early once it let the sketch go
    (or its call returned). What the worker does happens at the first step it is due."""
    end = clock.monotonic() + for_s
    while clock.monotonic() < end and running.thread.is_alive() and not jobs.let_go():
        clock.advance(min(STEP_S, end - clock.monotonic()))
        jobs.wait_for_a_look(looks=2)


class _SlowUpload(LocalBlobStore):
    """A bucket whose sketch uploads last as long as ``upload`` moves the fake clock on."""

    def __init__(self, root: Path, upload: Callable[[], None]) -> None:
        super().__init__(root)
        self.upload = upload

    def put(self, key: str, data: bytes, content_type: str) -> None:
        if key.endswith(".png"):
            self.upload()
        super().put(key, data, content_type)


def test_a_live_worker_uploading_longer_than_its_lease_keeps_its_sketch(
    build: Callable[..., SketchService], clock: FakeClock, tmp_path: Path
) -> None:
    """A quick drawing, then an upload that lasts two leases (a loaded runner, a slow link):
    the worker renews while it records too, so another delivery's claim two leases into the
    upload finds the sketch held, and the sketch is drawn once and stored once. (Renewed only
    while it drew, the lease ran out during the upload: the claim took the sketch over and
    drew it again — 5 model calls for 3 sketches in a CI run on make dev.)"""
    jobs = _WatchedJobs(clock)
    rivals: list[Claim] = []
    job_ids: list[str] = []
    renewals_before_upload: list[int] = []

    def upload() -> None:
        renewals_before_upload.append(len(jobs.renewals))
        for _ in range(int(2 * TIMING.lease_s / STEP_S)):
            clock.advance(STEP_S)
            jobs.wait_for_a_look()
        rival = jobs.claim_sketch(job_ids[0], 0, worker="rival", lease_s=TIMING.lease_s)
        rivals.append(rival.claim)

    model = FakeImageModel()
    blobs = _SlowUpload(tmp_path / "slow-blobs", upload)
    service = build(_config(TIMING, cancel_poll_s=0.001), model, jobs=jobs, blobs=blobs)
    job, _ = service.submission.submit_job("alice", _request(1))
    job_ids.append(job.job_id)
    (task,) = published(service)
    assert service.worker.run_sketch(task)
    assert rivals == [Claim.LEASED]
    done = service.submission.get_job("alice", job.job_id)
    assert done.status == "done" and done.sketch(0).status == "ok"
    assert done.sketch(0).attempts == 1 and len(model.requests) == 1
    assert blobs.exists(done.sketch(0).path or "")
    # Renewed during the upload, each time by the worker: the lease never ran out.
    assert renewals_before_upload == [0]
    assert len(jobs.renewals) >= 2 * TIMING.lease_s / TIMING.lease_renew_s - 1
    assert all(worker == service.worker.worker_id and ok for _, worker, ok in jobs.renewals)


def _renewed_every_renewal_until(jobs: _WatchedJobs, started: float, bound_s: float) -> int:
    """The worker renewed its lease every ``lease_renew_s``, never at or after ``bound_s``;
    how many times."""
    times = [at - started for at, _, _ in jobs.renewals]
    assert all(ok for _, _, ok in jobs.renewals)
    renewal = TIMING.lease_renew_s
    assert times == [renewal * n for n in range(1, math.ceil(bound_s / renewal))]
    return len(times)


def _held_sketch(
    build: Callable[..., SketchService], clock: FakeClock
) -> tuple[SketchService, _WatchedJobs, str]:
    """A one-sketch job whose sketch the service's worker has just claimed."""
    jobs = _WatchedJobs(clock)
    service = build(_config(TIMING, cancel_poll_s=0.001), FakeImageModel(), jobs=jobs)
    job, _ = service.submission.submit_job("alice", _request(1))
    claim = jobs.claim_sketch(
        job.job_id, 0, worker=service.worker.worker_id, lease_s=TIMING.lease_s
    )
    assert claim.claim is Claim.CLAIMED
    return service, jobs, job.job_id


def test_the_deployed_hold_bound_is_the_budget_after_the_claim() -> None:
    # 60 s for a slot + 2 x 120 s calls + 60 s around them: 360 s, six leases; the request's
    # timeout is the lease wait more (420 s).
    assert TIMING.hold_max_s == TIMING.quota_wait_s + 2 * MODEL_TIMEOUT_S + TIMING.worker_overhead_s
    assert _config(TIMING).hold_max_s == TIMING.hold_max_s == 360
    assert TIMING.worker_timeout_s == TIMING.lease_wait_s + TIMING.hold_max_s


def test_a_work_that_never_returns_gives_the_sketch_back_after_the_delivery_budget(
    build: Callable[..., SketchService], clock: FakeClock, otel: Telemetry
) -> None:
    """A call stuck for ever: the worker renews its lease while the work may still be live,
    then stops renewing, stops the work, releases the sketch (another delivery claims it at
    once, no lease to wait out) and answers TIMED_OUT; what the work returns later is dropped."""
    service, jobs, job_id = _held_sketch(build, clock)
    stuck, stopped, ended = threading.Event(), threading.Event(), threading.Event()
    entered = threading.Event()

    def work(stop: threading.Event) -> str:
        entered.set()
        try:
            stuck.wait()  # released by the test at its end, never by the worker
            if stop.is_set():
                stopped.set()
            return "late"
        finally:
            ended.set()

    started = clock.monotonic()
    holding = _OnItsOwnThread(lambda: service.worker.lease.hold(job_id, 0, work))
    assert entered.wait(timeout=30)  # the hold has begun, at ``started``
    try:
        _pass_time(clock, jobs, holding, TIMING.hold_max_s + 3 * TIMING.lease_s)
        assert holding.returned(), "the worker kept renewing the lease of a hung work"
    finally:
        stuck.set()
    assert holding.result == [TIMED_OUT]
    (given_up,) = otel.points("sketchgen.holds.given_up")  # what the operator's alert watches
    assert given_up.value == 1
    ((released_at, by),) = jobs.released
    assert by == service.worker.worker_id
    assert released_at - started == TIMING.hold_max_s
    # Renewed while the work might still be live, every lease_renew_s, none after the bound.
    renewals = _renewed_every_renewal_until(jobs, started, TIMING.hold_max_s)
    clock.advance(3 * TIMING.lease_s)
    assert len(jobs.renewals) == renewals
    # Released: pending, no lease; the claim's call stays counted (the work may have sent it).
    state = jobs.get_sketch(job_id, 0)
    assert state is not None and state.status == "pending" and state.lease_owner is None
    assert state.attempts == 1 and state.model_calls == 1 and "hung" in (state.error or "")
    rival = jobs.claim_sketch(job_id, 0, worker="rival", lease_s=TIMING.lease_s)
    assert rival.claim is Claim.CLAIMED
    # The abandoned work ends on its own, told to stop; its result goes nowhere.
    assert ended.wait(timeout=30) and stopped.is_set()
    assert jobs.get_sketch(job_id, 0) == rival.job.sketch(0)  # type: ignore[union-attr]


def test_a_live_work_that_ends_just_before_the_bound_keeps_its_sketch(
    build: Callable[..., SketchService], clock: FakeClock
) -> None:
    service, jobs, job_id = _held_sketch(build, clock)
    finish, stop_seen, entered = threading.Event(), threading.Event(), threading.Event()

    def work(stop: threading.Event) -> str:
        entered.set()
        assert finish.wait(timeout=60), "the test never let the work finish"
        if stop.is_set():
            stop_seen.set()
        return "drawn"

    started = clock.monotonic()
    holding = _OnItsOwnThread(lambda: service.worker.lease.hold(job_id, 0, work))
    assert entered.wait(timeout=30)  # the hold has begun, at ``started``
    _pass_time(clock, jobs, holding, TIMING.hold_max_s - 1)
    assert clock.monotonic() - started == TIMING.hold_max_s - 1
    finish.set()
    assert holding.returned()
    assert holding.result == ["drawn"] and not stop_seen.is_set()
    assert not jobs.released and not jobs.lost
    _renewed_every_renewal_until(jobs, started, TIMING.hold_max_s)
    state = jobs.get_sketch(job_id, 0)
    assert state is not None and state.status == "running"
    assert state.lease_owner == service.worker.worker_id
    assert state.lease_expires_at is not None and state.lease_expires_at > clock.now()


class _HangsOnce(FakeImageModel):
    """The first call never answers until the test lets it (a call stuck past every timeout);
    the calls after it answer at once."""

    def __init__(self) -> None:
        super().__init__()
        self.stuck = threading.Event()
        self.first_ended = threading.Event()
        self.sent: list[ImageRequest] = []  # every call, as it is sent

    def generate_image(self, request: ImageRequest) -> ImageResponse:
        with self._lock:
            self.sent.append(request)
            first = len(self.sent) == 1
        if not first:
            return super().generate_image(request)
        try:
            self.stuck.wait()
            return super().generate_image(request)
        finally:
            self.first_ended.set()


def test_a_hung_delivery_is_taken_over_by_the_next_and_the_job_ends(
    build: Callable[..., SketchService], clock: FakeClock
) -> None:
    """The worker's delivery path on the memory stores: the model call hangs; past the
    delivery's budget the delivery gives the sketch back and asks to be redelivered; the next
    delivery (the queue's minimum backoff later) claims it at once and draws it; the job ends.
    Two calls sent, two counted, each charged once; the hung call's late answer is dropped."""
    jobs = _WatchedJobs(clock)
    model = _HangsOnce()
    service = build(_config(TIMING, cancel_poll_s=0.001), model, jobs=jobs)
    job, _ = service.submission.submit_job("alice", _request(1))
    (task,) = published(service)
    first = _OnItsOwnThread(lambda: service.worker.run_sketch(task))
    try:
        _pass_time(clock, jobs, first, TIMING.worker_timeout_s + 3 * TIMING.lease_s)
        assert first.returned(), "the hung delivery kept its sketch"
    except BaseException:
        model.stuck.set()
        raise
    assert first.result == [False]  # redeliver: neither acked (the sketch lost) nor failed
    released = jobs.get_sketch(job.job_id, 0)
    assert released is not None and released.status == "pending"
    assert released.model_calls == 1 and len(model.sent) == 1  # the hung call, sent

    clock.advance(TIMING.minimum_backoff_s)
    started = clock.monotonic()
    assert service.worker.run_sketch(task)  # the next delivery: no lease to wait out
    assert clock.monotonic() - started < TIMING.lease_s
    done = service.submission.get_job("alice", job.job_id)
    assert done.status == "done"
    sketch = done.sketch(0)
    assert sketch.status == "ok" and sketch.attempts == 2
    assert sketch.model_calls == len(model.sent) == 2
    assert sketch.cost_usd == pytest.approx(sketch_cost_usd(done, 2))

    model.stuck.set()  # the hung call answers at last: its drawing is dropped
    assert model.first_ended.wait(timeout=30)
    for thread in threading.enumerate():
        if thread.name.startswith(f"hold-{job.job_id}-"):
            thread.join(timeout=30)
            assert not thread.is_alive()
    assert service.submission.get_job("alice", job.job_id).sketch(0) == sketch
    assert len(model.sent) == 2


def test_a_hung_wait_for_a_model_slot_gives_the_sketch_back_unspent(
    build: Callable[..., SketchService], clock: FakeClock
) -> None:
    """Stuck before its call was sent (the quota gate never answers): the claim's counted
    call and attempt are given back with the sketch, and the next delivery draws it with one
    call — one call sent, one counted."""

    class StuckGate(MemoryQuotaGate):
        def __init__(self) -> None:
            super().__init__(QuotaPolicy(rpm=60), clock=clock)
            self.stuck = threading.Event()
            self.first = True

        def acquire(self, key: str, uid: str, *, max_wait_s: float) -> float | None:
            if self.first:
                self.first = False
                self.stuck.wait()
                return None
            return super().acquire(key, uid, max_wait_s=max_wait_s)

    jobs = _WatchedJobs(clock)
    gate = StuckGate()
    model = FakeImageModel()
    service = build(_config(TIMING, cancel_poll_s=0.001), model, gate, jobs=jobs)
    job, _ = service.submission.submit_job("alice", _request(1))
    (task,) = published(service)
    first = _OnItsOwnThread(lambda: service.worker.run_sketch(task))
    try:
        _pass_time(clock, jobs, first, TIMING.worker_timeout_s + 3 * TIMING.lease_s)
        assert first.returned(), "the hung delivery kept its sketch"
    finally:
        gate.stuck.set()
    assert first.result == [False]
    released = jobs.get_sketch(job.job_id, 0)
    assert released is not None and released.status == "pending"
    assert released.model_calls == 0 and released.attempts == 0 and not model.requests
    clock.advance(TIMING.minimum_backoff_s)
    assert service.worker.run_sketch(task)
    sketch = service.submission.get_job("alice", job.job_id).sketch(0)
    assert sketch.status == "ok" and sketch.model_calls == len(model.requests) == 1
