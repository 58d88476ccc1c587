"""The service over local adapters, delivering queue messages by hand."""

import itertools
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sketchgen.adapters.local.blob_store import LocalBlobStore
from sketchgen.adapters.local.job_store import MemoryJobStore
from sketchgen.adapters.local.quota_gate import MemoryQuotaGate
from sketchgen.bootstrap import assemble
from sketchgen.clock import SystemClock
from sketchgen.errors import ConflictError, NoImageError, NotFoundError, TransientModelError
from sketchgen.generate.retry import RetryPolicy
from sketchgen.jobs import JobRequest
from sketchgen.metadata import JobMetadata
from sketchgen.ports import ImageRequest, ImageResponse
from sketchgen.quota import QuotaPolicy
from sketchgen.services import ServiceConfig, SketchService
from sketchgen.styles import StyleRegistry
from sketchgen.testing.clock import FakeClock
from tests.helpers.fakes import CollectingQueue, CrashOnceBlobStore, FakeImageModel, published
from tests.helpers.waiting import wait_until

FAST = ServiceConfig(
    lease_s=30, lease_wait_s=0, max_deliveries=3, retry=RetryPolicy(max_attempts=1)
)


@pytest.fixture
def clock() -> FakeClock:
    # Starts at the real time: a job's deadline is set from its creation time.
    return FakeClock(datetime.now(UTC))


@pytest.fixture
def make_service(
    tmp_path: Path, style_registry: StyleRegistry, clock: FakeClock
) -> Callable[..., SketchService]:
    def make(
        model: FakeImageModel | None = None,
        config: ServiceConfig = FAST,
        blobs=None,
        gate=None,
        clock: FakeClock | SystemClock = clock,
    ) -> SketchService:
        return assemble(
            gate=gate,
            clock=clock,
            jobs=MemoryJobStore(clock=clock),
            blobs=blobs or LocalBlobStore(tmp_path / "blobs"),
            queue=CollectingQueue(),
            model=model or FakeImageModel(),
            styles=style_registry,
            config=config,
        )

    return make


def _request(**overrides: object) -> JobRequest:
    return JobRequest(
        **{"brief": "playful golf mascot", "style_id": "test-ink", "num_images": 4, **overrides}
    )


def _deliver_all(service: SketchService) -> list[bool]:
    queue = service.queue
    assert isinstance(queue, CollectingQueue)
    tasks, queue.tasks = list(queue.tasks), []
    return [service.worker.run_sketch(task) for task in tasks]


def test_a_job_runs_to_done_with_metadata(make_service: Callable[..., SketchService]) -> None:
    service = make_service()
    job, created = service.submission.submit_job("alice", _request(seed=3))
    assert created and job.status == "queued" and len(job.sketches) == 4
    assert [t.index for t in published(service)] == [0, 1, 2, 3]
    assert _deliver_all(service) == [True] * 4
    done = service.submission.get_job("alice", job.job_id)
    assert done.status == "done" and done.metadata_path
    assert sorted(s.seq for s in done.sketches.values()) == [1, 2, 3, 4]
    for i in range(4):
        assert service.blobs.exists(f"jobs/{job.job_id}/sketch_{i}.png")
    meta = JobMetadata.model_validate_json(service.blobs.get(f"jobs/{job.job_id}/metadata.json"))
    assert meta.status == "done" and meta.images == [f"sketch_{i}.png" for i in range(4)]
    assert meta.config.seed == 3 and meta.model.requested == "gemini-2.5-flash-image"
    assert all(s.qa and s.qa["passed"] for s in meta.sketches)


def test_every_message_delivered_twice_makes_n_calls_and_n_files(
    make_service: Callable[..., SketchService],
) -> None:
    model = FakeImageModel()
    service = make_service(model)
    job, _ = service.submission.submit_job("alice", _request())
    tasks = list(published(service))
    published(service)[:] = tasks + tasks
    assert all(_deliver_all(service))
    assert len(model.requests) == 4
    root = Path(service.blobs.root) / "jobs" / job.job_id
    assert sorted(p.name for p in root.glob("sketch_*.png")) == [
        f"sketch_{i}.png" for i in range(4)
    ]
    metadata_bytes = service.blobs.get(f"jobs/{job.job_id}/metadata.json")
    service.stored.finalize_job(job.job_id)  # a late duplicate finaliser writes the same bytes
    assert service.blobs.get(f"jobs/{job.job_id}/metadata.json") == metadata_bytes


def test_a_leased_sketch_is_redelivered_not_redrawn(
    make_service: Callable[..., SketchService],
) -> None:
    model = FakeImageModel()
    service = make_service(model)
    job, _ = service.submission.submit_job("alice", _request(num_images=1))
    service.jobs.claim_sketch(job.job_id, 0, worker="someone-else", lease_s=60)
    assert _deliver_all(service) == [False]
    assert model.requests == []


def test_worker_killed_before_the_write_is_taken_over(
    make_service: Callable[..., SketchService], tmp_path: Path, clock: FakeClock
) -> None:
    model = FakeImageModel()
    blobs = CrashOnceBlobStore(LocalBlobStore(tmp_path / "blobs"))
    service = make_service(
        model, ServiceConfig(lease_s=0.05, lease_wait_s=0, retry=RetryPolicy(max_attempts=1)), blobs
    )
    job, _ = service.submission.submit_job("alice", _request(num_images=2))
    task = published(service)[0]
    with pytest.raises(SystemExit):
        service.worker.run_sketch(task)
    clock.advance(0.1)  # the dead worker's lease runs out
    assert all(_deliver_all(service))  # both messages, incl. the redelivered one
    final = service.submission.get_job("alice", job.job_id)
    assert final.status == "done"
    assert final.sketch(0).attempts == 2 and final.sketch(1).attempts == 1
    assert len(model.requests) == 3  # the lost result had to be redrawn once


def test_permanent_failure_is_recorded_and_acked(
    make_service: Callable[..., SketchService],
) -> None:
    model = FakeImageModel(
        failures={1: lambda: NoImageError("blocked", finish_reason="IMAGE_SAFETY")}
    )
    service = make_service(model)
    job, _ = service.submission.submit_job("alice", _request(num_images=2))
    assert _deliver_all(service) == [True, True]
    final = service.submission.get_job("alice", job.job_id)
    assert final.status == "partial"
    assert final.sketch(1).status == "failed" and final.sketch(1).finish_reason == "IMAGE_SAFETY"
    meta = json.loads(service.blobs.get(f"jobs/{job.job_id}/metadata.json"))
    assert meta["sketches"][1]["error"] == "blocked"


def test_transient_failures_redeliver_then_give_up(
    make_service: Callable[..., SketchService],
) -> None:
    model = FakeImageModel(failures={0: lambda: TransientModelError("503", status=503)})
    service = make_service(model)
    job, _ = service.submission.submit_job("alice", _request(num_images=1))
    task = published(service)[0]
    assert service.worker.run_sketch(task) is False
    assert service.submission.get_job("alice", job.job_id).sketch(0).status == "pending"
    assert service.worker.run_sketch(task) is False
    assert service.worker.run_sketch(task) is True  # third delivery = max_deliveries: give up
    final = service.submission.get_job("alice", job.job_id)
    assert final.status == "failed" and final.sketch(0).attempts == 3


def test_cancel_stops_unstarted_sketches(make_service: Callable[..., SketchService]) -> None:
    model = FakeImageModel()
    service = make_service(model)
    job, _ = service.submission.submit_job("alice", _request(num_images=3))
    tasks = list(published(service))
    assert service.worker.run_sketch(tasks[0])
    cancelled = service.submission.cancel_job("alice", job.job_id)
    assert cancelled.status == "partial"  # one made, two cancelled, and it is final
    assert service.worker.run_sketch(tasks[1]) and service.worker.run_sketch(tasks[2])
    assert len(model.requests) == 1


def test_cancel_ends_the_job_while_model_calls_are_in_flight(
    make_service: Callable[..., SketchService],
) -> None:
    import threading

    from sketchgen.api.sse import event_stream

    hold = threading.Event()
    model = FakeImageModel(hold=hold)
    service = make_service(model)
    job, _ = service.submission.submit_job("alice", _request(num_images=3))
    tasks = list(published(service))
    workers = [threading.Thread(target=service.worker.run_sketch, args=(t,)) for t in tasks[:2]]
    for worker in workers:
        worker.start()
    for _ in workers:
        assert model.entered.acquire(timeout=10)  # both calls are in the model now
    try:
        cancelled = service.submission.cancel_job("alice", job.job_id)
        # Ended and finalised before either call returned (they are still held).
        assert cancelled.status == "cancelled" and cancelled.metadata_path
        assert [cancelled.sketch(i).status for i in range(3)] == ["cancelled"] * 3
        assert sorted(cancelled.sketch(i).seq for i in range(3)) == [1, 2, 3]
        meta = JobMetadata.model_validate_json(service.blobs.get(cancelled.metadata_path))
        assert meta.status == "cancelled" and meta.images == []
        events = list(event_stream(service.jobs, job.job_id, 0, url_for=str, heartbeat_s=5))
        assert events[-1].startswith(b"id: 4\nevent: done\n")
        assert b'"status": "cancelled"' in events[-1]
        assert model.in_flight == 2
    finally:
        hold.set()
    for worker in workers:
        worker.join(timeout=10)
    # The late results are discarded: the job is as the cancel left it, no PNG was written.
    assert service.submission.get_job("alice", job.job_id) == cancelled
    for i in range(3):
        assert not service.blobs.exists(f"jobs/{job.job_id}/sketch_{i}.png")
    assert service.worker.run_sketch(tasks[2]) and len(model.requests) == 2


def test_cancel_frees_the_worker_while_its_model_call_is_still_in_flight(
    make_service: Callable[..., SketchService],
) -> None:
    """The worker stops waiting for a cancelled sketch's call: its delivery is acked within
    a poll of the job, the abandoned call makes no retry, and its late result is dropped."""
    import threading

    from sketchgen.errors import TransientModelError

    hold = threading.Event()
    # A transient error would be retried: after the cancel, the retry must not happen.
    model = FakeImageModel(hold=hold, failures={0: lambda: TransientModelError("busy")})
    config = ServiceConfig(
        lease_s=30,
        lease_wait_s=0,
        max_deliveries=3,
        retry=RetryPolicy(max_attempts=3, initial_delay_s=0.01, max_delay_s=0.01),
        cancel_poll_s=0.05,
    )
    service = make_service(model, config=config)
    job, _ = service.submission.submit_job("alice", _request(num_images=1))
    acked: list[bool] = []
    worker = threading.Thread(
        target=lambda: acked.append(service.worker.run_sketch(published(service)[0]))
    )
    worker.start()
    try:
        assert model.entered.acquire(timeout=10)  # the call is in the model
        cancelled = service.submission.cancel_job("alice", job.job_id)
        started = time.monotonic()
        worker.join(timeout=5)
        assert not worker.is_alive() and acked == [True]  # acked, not redelivered
        assert time.monotonic() - started < 2  # a poll or two, not the model call
        assert model.in_flight == 1  # the call itself is still out there, abandoned
    finally:
        hold.set()
    wait_until(lambda: model.in_flight == 0, "the abandoned call never returned", timeout_s=5)
    # A retry (0.01 s after the transient error) would enter the model again: waited for on
    # the model's own entry signal, so a retry fails the test as soon as it starts.
    assert not model.entered.acquire(timeout=0.5)
    assert len(model.requests) == 1  # no retry of the abandoned call
    assert service.submission.get_job("alice", job.job_id) == cancelled
    assert not service.blobs.exists(f"jobs/{job.job_id}/sketch_0.png")


def test_a_result_that_loses_the_race_with_cancel_is_not_referenced(
    make_service: Callable[..., SketchService], tmp_path: Path
) -> None:
    """The cancel lands between the worker's last check and its write: the PNG may be in the
    bucket, but the job, its metadata and the API do not name it."""

    class CancelOnPut(LocalBlobStore):
        def put(self, key: str, data: bytes, content_type: str) -> None:
            super().put(key, data, content_type)
            if key.endswith(".png"):
                service.submission.cancel_job("alice", key.split("/")[1])

    # Handed in at construction: the bundle is frozen and its capabilities hold their ports.
    service = make_service(blobs=CancelOnPut(tmp_path / "blobs"))
    job, _ = service.submission.submit_job("alice", _request(num_images=1))
    assert service.worker.run_sketch(published(service)[0])
    final = service.submission.get_job("alice", job.job_id)
    assert final.status == "cancelled" and final.sketch(0).path is None
    meta = JobMetadata.model_validate_json(service.blobs.get(f"jobs/{job.job_id}/metadata.json"))
    assert meta.images == [] and meta.sketches[0].file is None
    with pytest.raises(NotFoundError):
        service.submission.read_blob("alice", job.job_id, "sketch_0.png")


def test_idempotency_and_ownership(make_service: Callable[..., SketchService]) -> None:
    service = make_service()
    first, created = service.submission.submit_job("alice", _request(), idempotency_key="k1")
    again, created_again = service.submission.submit_job("alice", _request(), idempotency_key="k1")
    assert created and not created_again and again.job_id == first.job_id
    assert len(published(service)) == 4
    with pytest.raises(ConflictError):
        service.submission.submit_job("alice", _request(num_images=3), idempotency_key="k1")
    bobs, created = service.submission.submit_job("bob", _request(), idempotency_key="k1")
    assert created and bobs.job_id != first.job_id
    with pytest.raises(NotFoundError):
        service.submission.get_job("bob", first.job_id)
    with pytest.raises(NotFoundError):
        service.submission.cancel_job("bob", first.job_id)


def test_regenerate_by_style_links_new_jobs(make_service: Callable[..., SketchService]) -> None:
    service = make_service()
    original, _ = service.submission.submit_job("alice", _request(num_images=1))
    _deliver_all(service)
    (regen,) = service.batch.regenerate(style_id="test-ink")
    assert regen.regenerated_from == original.job_id and regen.priority == "batch"
    assert regen.owner_uid == "alice"
    assert published(service)[0].priority == "batch"


def test_a_duplicate_waits_out_a_live_lease_then_acks(
    make_service: Callable[..., SketchService],
) -> None:
    import threading

    model = FakeImageModel(delay_s=0.3)
    # The real clock: the duplicate waits for a real thread's model call to end.
    config = ServiceConfig(lease_s=30, lease_wait_s=5, lease_poll_s=0.05)
    service = make_service(model, config, clock=SystemClock())
    service.submission.submit_job("alice", _request(num_images=1))
    task = published(service)[0]
    first = threading.Thread(target=service.worker.run_sketch, args=(task,))
    first.start()
    assert model.entered.acquire(timeout=10)  # the first delivery holds the lease, drawing
    assert service.worker.run_sketch(task) is True  # waits for it, sees the sketch ended, acks
    first.join()
    assert len(model.requests) == 1


def test_sweep_requeues_lost_sketches_and_finalizes(
    make_service: Callable[..., SketchService], clock: FakeClock
) -> None:
    from datetime import timedelta

    service = make_service()
    job, _ = service.submission.submit_job("alice", _request(num_images=3))
    queue = service.queue
    assert isinstance(queue, CollectingQueue)
    first = queue.tasks[0]
    queue.tasks = []
    assert service.worker.run_sketch(first)
    # A worker claims sketch 1 and dies: its lease runs out. Sketch 2's message is lost.
    service.jobs.claim_sketch(job.job_id, 1, worker="dead", lease_s=0.01)
    clock.advance(0.02)
    assert service.upkeep.sweep() == {"finalized": 0, "deadline_cancelled": 0, "requeued": 1}
    assert [t.index for t in queue.tasks] == [1]
    queue.tasks = []
    assert service.upkeep.sweep(stale_after=timedelta(0))["requeued"] == 2  # 1 again, and pending 2
    assert sorted(t.index for t in queue.tasks) == [1, 2]
    _deliver_all(service)
    assert service.submission.get_job("alice", job.job_id).status == "done"
    assert service.upkeep.sweep() == {"finalized": 0, "deadline_cancelled": 0, "requeued": 0}


def test_a_finaliser_that_fails_is_finished_by_a_redelivery_after_the_grace(
    make_service: Callable[..., SketchService], clock: FakeClock, tmp_path: Path
) -> None:
    """The delivery that ends the last sketch wins the job's final marker, then fails to
    finalise (here: writing metadata.json). Its redelivery finds the marker taken: within
    the grace it is not acknowledged (the queue brings it back), after the grace it
    finishes the job. Acknowledged within the grace, the job would stay running."""

    class FailingMetadataOnce(LocalBlobStore):
        failed = False

        def put(self, key: str, data: bytes, content_type: str) -> None:
            if key.endswith("metadata.json") and not FailingMetadataOnce.failed:
                FailingMetadataOnce.failed = True
                raise OSError("storage unavailable")
            super().put(key, data, content_type)

    service = make_service(blobs=FailingMetadataOnce(tmp_path / "blobs"))
    job, _ = service.submission.submit_job("alice", _request(num_images=1))
    task = published(service)[0]
    with pytest.raises(OSError, match="storage unavailable"):
        service.worker.run_sketch(task)  # drew the sketch, won the marker, failed to finalise
    assert service.submission.get_job("alice", job.job_id).status == "running"
    assert service.worker.run_sketch(task) is False  # within the grace: come back later
    assert service.submission.get_job("alice", job.job_id).status == "running"
    clock.advance(service.worker.config.finalize_grace_s)
    assert service.worker.run_sketch(task) is True
    final = service.submission.get_job("alice", job.job_id)
    assert final.status == "done"
    assert service.blobs.exists(f"jobs/{job.job_id}/metadata.json")


def test_deadline_cancels_unstarted_sketches(
    make_service: Callable[..., SketchService], clock: FakeClock
) -> None:
    model = FakeImageModel()
    service = make_service(model)
    # The deadline is set from the real time of submission; the fake clock started at the real
    # time too, a moment before, so it passes the deadline once advanced past it.
    job, _ = service.submission.submit_job("alice", _request(num_images=3), deadline_s=60)
    queue = service.queue
    assert isinstance(queue, CollectingQueue)
    assert service.worker.run_sketch(queue.tasks[0])  # before the deadline: drawn
    clock.advance(61)
    assert service.worker.run_sketch(queue.tasks[1])  # after it: cancelled, never drawn
    assert len(model.requests) == 1
    done = service.submission.get_job("alice", job.job_id)  # every unstarted sketch ended at once
    assert done.status == "partial" and done.metadata_path
    assert [done.sketch(i).status for i in range(3)] == ["ok", "cancelled", "cancelled"]

    # A job none of whose messages arrive in time is ended by the sweep.
    late, _ = service.submission.submit_job("alice", _request(num_images=2, seed=9), deadline_s=60)
    clock.advance(61)
    assert service.upkeep.sweep() == {"finalized": 1, "deadline_cancelled": 1, "requeued": 0}
    assert service.submission.get_job("alice", late.job_id).status == "cancelled"
    assert len(model.requests) == 1


class ClockedModel(FakeImageModel):
    """Notes the (simulated) time of every call."""

    def __init__(self, clock: FakeClock, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.clock = clock
        self.times: list[float] = []

    def generate_image(self, request: ImageRequest) -> ImageResponse:
        self.times.append(self.clock.time())
        return super().generate_image(request)


def test_the_quota_gate_spaces_every_model_call(
    make_service: Callable[..., SketchService], clock: FakeClock
) -> None:
    gate = MemoryQuotaGate(QuotaPolicy(rpm=30), clock=clock)
    model = ClockedModel(clock, failures={1: lambda: TransientModelError("503", status=503)})
    config = ServiceConfig(lease_s=30, lease_wait_s=0, retry=RetryPolicy(max_attempts=2))
    service = make_service(model, config=config, gate=gate)
    service.submission.submit_job("alice", _request())
    _deliver_all(service)
    # 4 sketches, sketch 1 retried in its delivery: 5 calls then redeliveries, each 2 s apart
    gaps = [b - a for a, b in itertools.pairwise(model.times)]
    # The fake clock keeps a datetime (microseconds): a call lands up to 1 µs off its slot.
    assert len(model.times) >= 5 and min(gaps) >= 2.0 - 2e-6


def test_a_sketch_waiting_for_quota_goes_back_to_the_queue_unspent(
    make_service: Callable[..., SketchService], clock: FakeClock
) -> None:
    policy = QuotaPolicy(rpm=60, horizon_s=5)
    gate = MemoryQuotaGate(policy, clock=clock)
    model = FakeImageModel()
    service = make_service(model, config=ServiceConfig(quota_wait_s=1.0), gate=gate)
    job, _ = service.submission.submit_job("alice", _request(num_images=3))
    tasks = list(published(service))
    key = job.plan.model_id
    gate.hold(key, 30.0)  # the model said 429, retry in 30 s: no slot within the horizon
    # "Later": the queue delivers these again after its backoff (ADR 0055); no new message.
    assert _deliver_all(service) == [False, False, False]
    assert published(service) == []
    waiting = service.submission.get_job("alice", job.job_id)
    assert {s.status for s in waiting.sketches.values()} == {"pending"}
    assert all(s.attempts == 0 for s in waiting.sketches.values()) and not model.requests
    clock.advance(60)  # ...and once the horizon clears, the same tasks run
    assert [service.worker.run_sketch(task) for task in tasks] == [True, True, True]
    assert service.submission.get_job("alice", job.job_id).status == "done"


def test_an_exception_after_the_claim_releases_the_lease(
    make_service: Callable[..., SketchService], tmp_path: Path
) -> None:
    """The next delivery takes the sketch at once instead of waiting out the lease."""

    class FailingPut(LocalBlobStore):
        failed = False

        def put(self, key: str, data: bytes, content_type: str) -> None:
            if key.endswith(".png") and not FailingPut.failed:
                FailingPut.failed = True
                raise OSError("disk full")
            super().put(key, data, content_type)

    model = FakeImageModel()
    service = make_service(model, blobs=FailingPut(tmp_path / "blobs"))
    job, _ = service.submission.submit_job("alice", _request(num_images=1))
    task = published(service)[0]
    with pytest.raises(OSError):
        service.worker.run_sketch(task)
    released = service.submission.get_job("alice", job.job_id).sketch(0)
    assert released.status == "pending" and released.lease_owner is None
    assert released.error == "disk full" and released.model_calls == 1  # the call stays counted
    assert service.worker.run_sketch(task)  # lease_wait_s=0: taken at once, not LEASED
    done = service.submission.get_job("alice", job.job_id)
    assert done.status == "done" and done.sketch(0).model_calls == 2
