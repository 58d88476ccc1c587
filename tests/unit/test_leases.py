"""Leases that hand over (issue 24 item 3), on a fake clock with the deployed timing.

The timing is the cloud's: ``infra/functions.yaml`` (``delivery:``) through
:class:`sketchgen.timing.DeliveryTiming`, as Terraform and ``make dev`` derive theirs.
"""

from __future__ import annotations

import itertools
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dev.definition import load_definition
from sketchgen.adapters.local.blob_store import LocalBlobStore
from sketchgen.adapters.local.job_store import MemoryJobStore
from sketchgen.adapters.local.quota_gate import MemoryQuotaGate
from sketchgen.adapters.local.task_queue import InlineTaskQueue
from sketchgen.bootstrap import assemble
from sketchgen.errors import StorageError
from sketchgen.generate.retry import RetryPolicy
from sketchgen.jobs import Claim, JobRequest
from sketchgen.ports import SketchTask
from sketchgen.quota import Decision, QuotaPolicy
from sketchgen.services import ServiceConfig, SketchService
from sketchgen.styles import StyleRegistry
from sketchgen.testing.clock import FakeClock
from sketchgen.timing import DeliveryTiming, queue_delivery_attempts
from tests.helpers.fakes import CollectingQueue, FakeImageModel, published

MODEL_TIMEOUT_S = 120.0  # Terraform's default (var.model_timeout_s)
TIMING = load_definition().timing(model_timeout_s=MODEL_TIMEOUT_S)


def _config(timing: DeliveryTiming) -> ServiceConfig:
    """The worker's settings as the deployment sets them from ``timing``."""
    return ServiceConfig(
        lease_s=timing.lease_s,
        lease_wait_s=timing.lease_wait_s,
        quota_wait_s=timing.quota_wait_s,
        retry=RetryPolicy(max_attempts=1),
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime.now(UTC))  # a job's deadline is set from its creation time


@pytest.fixture
def build(
    tmp_path: Path, style_registry: StyleRegistry, clock: FakeClock
) -> Callable[..., SketchService]:
    def make(config: ServiceConfig, model: FakeImageModel, gate: MemoryQuotaGate | None = None):
        return assemble(
            gate=gate,
            clock=clock,
            jobs=MemoryJobStore(clock=clock),
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
    # The numbers this file's scenario relies on, as deployed (Terraform's default timeout).
    assert TIMING.lease_s > TIMING.worker_timeout_s == TIMING.ack_deadline_s


@pytest.mark.parametrize("timing", [TIMING], ids=["deployed"])
def test_a_dead_workers_sketch_is_taken_over_by_the_next_delivery(
    build: Callable[..., SketchService], clock: FakeClock, timing: DeliveryTiming
) -> None:
    model = FakeImageModel()
    service = build(_config(timing), model)
    job, _ = service.submission.submit_job("alice", _request(1))
    (task,) = published(service)
    # A worker claims the sketch and dies holding it: no answer, no release, no model call.
    dead = service.jobs.claim_sketch(job.job_id, 0, worker="dead", lease_s=timing.lease_s)
    assert dead.claim is Claim.CLAIMED
    # Its request ends by the timeout (the ack deadline) at the latest, and Pub/Sub pushes
    # again no sooner than the retry policy's minimum backoff after that.
    clock.advance(timing.ack_deadline_s + timing.minimum_backoff_s)
    started = clock.monotonic()
    assert service.worker.run_sketch(task)  # this delivery draws it: not "later"
    waited = clock.monotonic() - started
    assert 0 < waited <= timing.lease_wait_s  # it waited out the rest of the dead one's lease
    done = service.submission.get_job("alice", job.job_id)
    assert done.status == "done" and done.sketch(0).attempts == 2
    assert len(model.requests) == 1


def test_a_lease_longer_than_the_handover_allows_is_found(
    build: Callable[..., SketchService], clock: FakeClock
) -> None:
    """The scenario above fails for timing that drifted (the lease outlasting the next
    delivery's wait): the check says so, and the delivery answers "later"."""
    drifted = replace(TIMING, lease_margin_s=TIMING.minimum_backoff_s + TIMING.lease_wait_s + 30)
    assert any("cannot wait out its lease" in p for p in drifted.problems())
    service = build(_config(drifted), FakeImageModel())
    job, _ = service.submission.submit_job("alice", _request(1))
    (task,) = published(service)
    service.jobs.claim_sketch(job.job_id, 0, worker="dead", lease_s=drifted.lease_s)
    clock.advance(drifted.ack_deadline_s + drifted.minimum_backoff_s)
    assert service.worker.run_sketch(task) is False


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
