"""Leases that hand over (issue 24 item 3), on a fake clock with the deployed timing.

The timing is the cloud's: ``infra/functions.yaml`` (``delivery:``) through
:class:`sketchgen.timing.DeliveryTiming`, as Terraform and ``make dev`` derive theirs. The
lease is short and renewed by the live worker (docs/decisions/0069): a dead worker's sketch
is taken over by the very next delivery, a live one's is never taken.
"""

from __future__ import annotations

import itertools
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
from sketchgen.jobs import Claim, JobRequest, SketchState
from sketchgen.ports import ImageRequest, ImageResponse, SketchTask
from sketchgen.quota import Decision, QuotaPolicy
from sketchgen.services import ServiceConfig, SketchService
from sketchgen.styles import StyleRegistry
from sketchgen.testing.clock import FakeClock
from sketchgen.timing import DeliveryTiming, queue_delivery_attempts
from tests.helpers.fakes import CollectingQueue, FakeImageModel, published

MODEL_TIMEOUT_S = 120.0  # Terraform's default (var.model_timeout_s)
TIMING = load_definition().timing(model_timeout_s=MODEL_TIMEOUT_S)


def _config(timing: DeliveryTiming, **real: Any) -> ServiceConfig:
    """The worker's settings as the deployment sets them from ``timing`` (``real``: the
    settings in real seconds, such as how often a worker waiting on its drawing looks up)."""
    return ServiceConfig(
        lease_s=timing.lease_s,
        lease_wait_s=timing.lease_wait_s,
        quota_wait_s=timing.quota_wait_s,
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
    ):
        return assemble(
            gate=gate,
            clock=clock,
            jobs=jobs or MemoryJobStore(clock=clock),
            blobs=LocalBlobStore(tmp_path / "blobs"),
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
    sketch while it waits on its drawing (a cancel check or a renewal), and can fail renewals
    (the worker cut off from the store)."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock=clock)
        self.fake_clock = clock
        self._looked = threading.Condition()
        self._last_look = -1.0
        self.renewals: list[tuple[float, str, bool]] = []
        self.fail_renewals = False
        self.lost = False

    def _saw(self, at: float) -> None:
        with self._looked:
            self._last_look = max(self._last_look, at)
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

    def wait_for_a_look(self) -> None:
        """Until the worker has looked at its sketch at the clock's present time (or let it go)."""
        now = self.fake_clock.monotonic()
        with self._looked:
            seen = self._looked.wait_for(lambda: self._last_look >= now or self.lost, timeout=30)
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
