"""Money follows calls (issue 23 item 1, docs/decisions/0025): every model call is charged
when it is sent; a cancel stops future calls and gives back only the unissued part; a call
beyond a sketch's reservation is admitted against the budget as it is sent, or not made."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from sketchgen.adapters.local.blob_store import LocalBlobStore
from sketchgen.adapters.local.job_store import MemoryJobStore
from sketchgen.adapters.local.usage_ledger import MemoryUsageLedger
from sketchgen.bootstrap import assemble
from sketchgen.errors import LimitError, TransientModelError
from sketchgen.generate.retry import RetryPolicy
from sketchgen.jobs import JobRequest
from sketchgen.ports import ImageRequest, ImageResponse
from sketchgen.services import ServiceConfig, SketchService
from sketchgen.services.spending import SpendControl, SpendLimits
from sketchgen.styles import StyleRegistry
from tests.helpers.fakes import CollectingQueue, FakeImageModel, published

PRICE = 0.039  # gemini-2.5-flash-image at 1K


@pytest.fixture
def ledger() -> MemoryUsageLedger:
    return MemoryUsageLedger()


@pytest.fixture
def make_service(
    tmp_path: Path, style_registry: StyleRegistry, ledger: MemoryUsageLedger
) -> Callable[..., SketchService]:
    def make(model: FakeImageModel, *, daily: int, retries: int = 1) -> SketchService:
        config = ServiceConfig(
            lease_s=30,
            lease_wait_s=0,
            cancel_poll_s=0.02,
            retry=RetryPolicy(max_attempts=retries, initial_delay_s=0.0, max_delay_s=0.0),
        )
        return assemble(
            jobs=MemoryJobStore(),
            blobs=LocalBlobStore(tmp_path / "blobs"),
            queue=CollectingQueue(),
            model=model,
            styles=style_registry,
            config=config,
            spend=SpendControl(ledger, SpendLimits(daily_images=daily, active_jobs=10)),
        )

    return make


def _request(n: int) -> JobRequest:
    return JobRequest(brief="golf mascot", style_id="test-ink", num_images=n, model="flash")


def test_a_cancel_storm_never_spends_past_the_daily_limit(
    make_service: Callable[..., SketchService], ledger: MemoryUsageLedger
) -> None:
    """Submit 3, cancel once the first call is out, repeat until refused: the calls made stay
    within the day's images and the usage counts every one of them."""
    hold = threading.Event()
    model = FakeImageModel(hold=hold)
    service = make_service(model, daily=6)
    jobs = []
    for _ in range(10):
        try:
            job, _ = service.submission.submit_job("mallory", _request(3))
        except LimitError:
            break
        jobs.append(job)
        first = published(service).pop(0)
        drawing = threading.Thread(target=service.worker.run_sketch, args=(first,))
        drawing.start()
        assert model.entered.acquire(timeout=10)  # the call is out: it is paid for
        service.submission.cancel_job("mallory", job.job_id)
        drawing.join(10)
        for task in published(service):
            service.worker.run_sketch(task)  # the rest: cancelled, never drawn
        published(service).clear()
    hold.set()
    usage = ledger.usage("mallory")
    assert len(model.requests) <= 6  # never past the daily limit
    assert usage.images_used >= len(model.requests)  # every call counted
    # Each cancelled job keeps one call's image and gives back two: the fifth job's three
    # would pass the limit of 6 with 4 used.
    assert len(jobs) == 4 and usage.images_used == len(model.requests) == 4
    cancelled = service.submission.get_job("mallory", jobs[0].job_id)
    assert cancelled.status == "cancelled" and cancelled.cost_usd == pytest.approx(PRICE)
    assert [s.model_calls for s in cancelled.sketches.values()] == [1, 0, 0]


def test_a_retry_is_a_call_admitted_against_the_budget_as_it_is_sent(
    make_service: Callable[..., SketchService], ledger: MemoryUsageLedger
) -> None:
    failures = {0: lambda: TransientModelError("busy", status=503)}
    once: dict[int, Callable[[], Exception]] = {}

    class FailsOnce(FakeImageModel):
        def generate_image(self, request: ImageRequest) -> ImageResponse:
            if request.index in failures and request.index not in once:
                once[request.index] = failures[request.index]
                with self._lock:
                    self.requests.append(request)
                raise failures[request.index]()
            return super().generate_image(request)

    model = FailsOnce()
    service = make_service(model, daily=3, retries=2)
    job, _ = service.submission.submit_job("alice", _request(2))
    for task in list(published(service)):
        assert service.worker.run_sketch(task)
    done = service.submission.get_job("alice", job.job_id)
    assert done.status == "done" and len(model.requests) == 3
    assert [done.sketch(i).model_calls for i in range(2)] == [2, 1]
    assert done.cost_usd == pytest.approx(3 * PRICE)
    assert ledger.usage("alice").images_used == 3  # 2 reserved + the retry, admitted when sent


def test_a_call_past_the_budget_is_not_made(
    make_service: Callable[..., SketchService], ledger: MemoryUsageLedger
) -> None:
    model = FakeImageModel(failures={0: lambda: TransientModelError("busy", status=503)})
    service = make_service(model, daily=2, retries=3)
    job, _ = service.submission.submit_job("alice", _request(2))
    for task in list(published(service)):
        service.worker.run_sketch(task)
    done = service.submission.get_job("alice", job.job_id)
    assert len(model.requests) == 2  # sketch 0's retry would have passed the day's 2 images
    assert done.sketch(0).status == "failed"
    assert done.sketch(0).finish_reason == "BUDGET_EXHAUSTED" and done.sketch(0).model_calls == 1
    assert ledger.usage("alice").images_used == 2


def test_a_call_past_the_deployments_ceiling_is_not_made(
    tmp_path: Path, style_registry: StyleRegistry, ledger: MemoryUsageLedger
) -> None:
    from sketchgen.adapters.local.deployment_ceiling import MemoryDeploymentCeiling

    # Room for the two reserved images and not one more: the retry is refused by the
    # deployment's ceiling although the user's own day would have allowed it.
    ceiling = MemoryDeploymentCeiling(2 * PRICE + 0.001)
    model = FakeImageModel(failures={0: lambda: TransientModelError("busy", status=503)})
    service = assemble(
        jobs=MemoryJobStore(),
        blobs=LocalBlobStore(tmp_path / "blobs"),
        queue=CollectingQueue(),
        model=model,
        styles=style_registry,
        config=ServiceConfig(
            lease_s=30,
            lease_wait_s=0,
            retry=RetryPolicy(max_attempts=3, initial_delay_s=0.0, max_delay_s=0.0),
        ),
        spend=SpendControl(ledger, SpendLimits(daily_images=10, active_jobs=10), ceiling=ceiling),
    )
    job, _ = service.submission.submit_job("alice", _request(2))
    for task in list(published(service)):
        service.worker.run_sketch(task)
    done = service.submission.get_job("alice", job.job_id)
    assert len(model.requests) == 2
    assert done.sketch(0).finish_reason == "BUDGET_EXHAUSTED"
    assert ledger.usage("alice").images_used == 2  # the user is not charged the refused call
    assert ceiling.status().spent_usd == pytest.approx(2 * PRICE)
