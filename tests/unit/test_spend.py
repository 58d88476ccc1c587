"""Spend control over local adapters: prices, plans, daily images, active jobs, streams,
refunds exactly once, and what the HTTP API answers (docs/decisions/0012)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from werkzeug.test import Client

from sketchgen.adapters.local.blob_store import LocalBlobStore
from sketchgen.adapters.local.job_store import MemoryJobStore
from sketchgen.adapters.local.usage_ledger import MemoryUsageLedger, SqliteUsageLedger
from sketchgen.api.auth import DevAuthenticator
from sketchgen.api.http import Api
from sketchgen.api.stream_slots import StreamSlots
from sketchgen.bootstrap import assemble
from sketchgen.errors import LimitError, NoImageError, NotEntitledError
from sketchgen.generate.retry import RetryPolicy
from sketchgen.jobs import JobRequest
from sketchgen.metadata import JobMetadata
from sketchgen.pricing import PRICE_PER_IMAGE_USD, price_per_image
from sketchgen.services import ServiceConfig, SketchService
from sketchgen.services.spending import SpendControl, SpendLimits
from sketchgen.settings import get_settings
from sketchgen.spend import Account, Limits, UsageDoc, reserve_transition, settle_transition
from sketchgen.styles import StyleRegistry
from tests.helpers.fakes import CollectingQueue, FakeImageModel, published

FAST = ServiceConfig(
    lease_s=30, lease_wait_s=0, max_deliveries=3, retry=RetryPolicy(max_attempts=1)
)


def _request(**overrides: object) -> JobRequest:
    fields: dict[str, object] = {"brief": "golf mascot", "style_id": "test-ink", "num_images": 2}
    return JobRequest(**{**fields, **overrides})


@pytest.fixture
def ledger() -> MemoryUsageLedger:
    return MemoryUsageLedger()


@pytest.fixture
def make_service(
    tmp_path: Path, style_registry: StyleRegistry, ledger: MemoryUsageLedger
) -> Callable[..., SketchService]:
    def make(
        model: FakeImageModel | None = None, *, daily: int = 10, active: int = 2
    ) -> SketchService:
        return assemble(
            jobs=MemoryJobStore(),
            blobs=LocalBlobStore(tmp_path / "blobs"),
            queue=CollectingQueue(),
            model=model or FakeImageModel(),
            styles=style_registry,
            config=FAST,
            spend=SpendControl(ledger, SpendLimits(daily_images=daily, active_jobs=active)),
        )

    return make


def _deliver_all(service: SketchService) -> None:
    queue = service.queue
    assert isinstance(queue, CollectingQueue)
    tasks, queue.tasks = list(queue.tasks), []
    for task in tasks:
        service.worker.run_sketch(task)


# -- the price table ---------------------------------------------------------------------------


def test_prices_by_model_size_and_batch() -> None:
    assert price_per_image("flash", "1K") == 0.039
    assert price_per_image("pro", "2K") == 0.134
    assert price_per_image("gemini-3-pro-image-preview", "4K") == 0.24
    assert price_per_image("pro", "4K", batch=True) == 0.12
    assert price_per_image("offline-sketch-v1", "1K") == 0.0


def test_an_unknown_model_costs_as_the_dearest_known_image() -> None:
    dearest = max(p for sizes in PRICE_PER_IMAGE_USD.values() for p in sizes.values())
    assert price_per_image("gemini-9-ultra-image", "1K") == dearest
    assert price_per_image("some-other-model", "2K", batch=True) == dearest / 2


# -- the rules -------------------------------------------------------------------------------


def test_reserve_refuses_past_the_day_and_the_cap_and_a_new_day_starts_fresh() -> None:
    limits = Limits(daily_images=5, active_jobs=2)
    now = datetime(2026, 12, 3, 23, 0, tzinfo=UTC)
    doc, result = reserve_transition(UsageDoc(), "a", 4, limits, now)
    assert doc is not None and result.refused is None and result.images_left == 1
    unchanged, refused = reserve_transition(doc, "b", 2, limits, now)
    assert unchanged is None and refused.refused == "budget_exhausted" and refused.images_left == 1
    doc, _ = reserve_transition(doc, "b", 1, limits, now)
    assert doc is not None
    _, capped = reserve_transition(doc, "c", 0, limits, now)
    assert capped.refused == "too_many_active_jobs" and capped.active_job_ids == ("a", "b")
    # Settled jobs free their slot; the next UTC day has all its images.
    doc, _ = settle_transition(doc, "a", 0, 0.1, now)
    doc, _ = settle_transition(doc, "b", 0, 0.0, now)
    assert doc is not None
    tomorrow, result = reserve_transition(doc, "c", 5, limits, now + timedelta(hours=2))
    assert tomorrow is not None and result.refused is None and tomorrow.images_used == 5
    assert tomorrow.cost_usd == 0.0 and tomorrow.day == "2026-12-04"


def test_settling_refunds_once_and_only_on_the_day_it_was_counted() -> None:
    limits = Limits(daily_images=10, active_jobs=3)
    now = datetime(2026, 12, 3, 12, tzinfo=UTC)
    doc, _ = reserve_transition(UsageDoc(), "a", 4, limits, now)
    assert doc is not None
    settled, first = settle_transition(doc, "a", 3, 0.039, now)
    assert first and settled is not None and settled.images_used == 1 and settled.cost_usd == 0.039
    again, second = settle_transition(settled, "a", 3, 0.039, now)
    assert again is None and not second
    # A job counted yesterday frees its slot today but gives nothing back to today.
    doc, _ = reserve_transition(UsageDoc(), "y", 4, limits, now - timedelta(days=1))
    assert doc is not None
    today, done = settle_transition(doc, "y", 4, 0.0, now)
    assert done and today is not None and today.images_used == 0 and not today.jobs


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_local_ledgers_reserve_atomically_across_threads(tmp_path: Path, kind: str) -> None:
    ledger = MemoryUsageLedger() if kind == "memory" else SqliteUsageLedger(tmp_path / "u.db")
    limits = Limits(daily_images=30, active_jobs=100)
    results: list[bool] = []

    def submit(i: int) -> None:
        results.append(ledger.reserve("alice", f"job{i}", 4, limits).refused is None)

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 7  # 7 x 4 = 28 <= 30 < 32
    assert ledger.usage("alice").images_used == 28
    ledger.set_account("alice", Account(plan="pro", daily_images=50))
    assert ledger.account("alice").plan == "pro" and ledger.account("bob").plan == "free"


# -- the service -------------------------------------------------------------------------------


def test_a_request_outside_the_plan_is_refused_naming_the_field(
    make_service: Callable[..., SketchService], ledger: MemoryUsageLedger
) -> None:
    service = make_service()
    with pytest.raises(NotEntitledError) as error:
        service.submission.submit_job("alice", _request(model="pro"))
    assert error.value.field == "model" and error.value.http_status == 403
    with pytest.raises(NotEntitledError) as error:
        service.submission.submit_job(
            "alice", _request(model="gemini-3.1-flash-image-preview", image_size="4K")
        )
    assert error.value.field == "image_size"
    assert published(service) == []
    ledger.set_account("alice", Account(plan="pro"))
    job, created = service.submission.submit_job("alice", _request(model="pro", image_size="4K"))
    assert created and len(job.sketches) == 2


def test_limits_refuse_with_nothing_queued_and_another_user_is_unaffected(
    make_service: Callable[..., SketchService],
) -> None:
    service = make_service(daily=5, active=2)
    service.submission.submit_job("alice", _request(num_images=2))
    service.submission.submit_job("alice", _request(num_images=2))
    with pytest.raises(LimitError) as capped:
        service.submission.submit_job("alice", _request(num_images=1))
    assert capped.value.code == "too_many_active_jobs" and capped.value.http_status == 429
    assert len(published(service)) == 4
    _deliver_all(service)  # both jobs end: their slots are free again
    with pytest.raises(LimitError) as broke:
        service.submission.submit_job("alice", _request(num_images=2))
    assert broke.value.code == "budget_exhausted" and broke.value.field == "num_images"
    assert "1 of your 5" in str(broke.value) and broke.value.retry_after_s > 0
    assert published(service) == []
    service.submission.submit_job("bob", _request(num_images=4))
    assert len(service.jobs.list_jobs(owner_uid="alice")) == 2


def test_every_call_sent_is_charged_once_even_without_an_image(
    make_service: Callable[..., SketchService], ledger: MemoryUsageLedger
) -> None:
    """A call is charged when it is sent (docs/decisions/0025), whatever it answers; a
    redelivered message charges nothing twice."""
    model = FakeImageModel(failures={1: lambda: NoImageError("no image", finish_reason="SAFETY")})
    service = make_service(model)
    job, _ = service.submission.submit_job("alice", _request(num_images=3, model="flash"))
    tasks = list(published(service))
    _deliver_all(service)
    for task in tasks:  # every message delivered again: nothing is charged twice
        service.worker.run_sketch(task)
    service.stored.finalize_job(job.job_id)
    usage = ledger.usage("alice")
    assert usage.images_used == 3 and not usage.jobs  # 3 reserved, 3 calls sent, settled
    assert usage.cost_usd == pytest.approx(3 * 0.039) and len(model.requests) == 3
    done = service.submission.get_job("alice", job.job_id)
    assert done.cost_usd == pytest.approx(3 * 0.039)
    assert [done.sketch(i).model_calls for i in range(3)] == [1, 1, 1]
    assert [done.sketch(i).cost_usd for i in range(3)] == [0.039] * 3
    meta = JobMetadata.model_validate_json(service.blobs.get(f"jobs/{job.job_id}/metadata.json"))
    assert meta.cost_usd == pytest.approx(0.117) and meta.sketches[1].model_calls == 1


def test_a_cancelled_job_gives_back_its_unstarted_images(
    make_service: Callable[..., SketchService], ledger: MemoryUsageLedger
) -> None:
    service = make_service()
    job, _ = service.submission.submit_job("alice", _request(num_images=4))
    service.submission.cancel_job("alice", job.job_id)
    assert ledger.usage("alice").images_used == 0 and not ledger.usage("alice").jobs


def test_an_idempotent_replay_reserves_nothing_more(
    make_service: Callable[..., SketchService], ledger: MemoryUsageLedger
) -> None:
    service = make_service()
    first, _ = service.submission.submit_job("alice", _request(), idempotency_key="k")
    again, created = service.submission.submit_job("alice", _request(), idempotency_key="k")
    assert not created and again.job_id == first.job_id
    assert ledger.usage("alice").images_used == 2 and list(ledger.usage("alice").jobs) == [
        first.job_id
    ]


def test_a_lost_settlement_is_healed_when_the_cap_is_reached(
    make_service: Callable[..., SketchService], ledger: MemoryUsageLedger
) -> None:
    service = make_service(active=1)
    job, _ = service.submission.submit_job("alice", _request())
    _deliver_all(service)
    # As if the finaliser had died after the job turned final but before it settled: the
    # job's charge is still in the ledger, holding the one active slot.
    ledger.reserve("alice", job.job_id, 0, Limits(daily_images=10, active_jobs=1))
    assert ledger.usage("alice").active_job_ids == [job.job_id]
    second, created = service.submission.submit_job("alice", _request())
    assert created and ledger.usage("alice").active_job_ids == [second.job_id]


def test_a_refinement_is_a_job_like_any_other(
    make_service: Callable[..., SketchService], ledger: MemoryUsageLedger
) -> None:
    service = make_service(daily=4, active=3)
    parent, _ = service.submission.submit_job("alice", _request(num_images=3))
    _deliver_all(service)
    child, _ = service.submission.refine_sketch("alice", parent.job_id, 1, "bigger grin")
    assert ledger.usage("alice").images_used == 4 and child.job_id in ledger.usage("alice").jobs
    with pytest.raises(LimitError) as error:
        service.submission.refine_sketch("alice", parent.job_id, 2, "smaller hat")
    assert error.value.code == "budget_exhausted"


def test_regeneration_counts_images_but_not_the_active_cap(
    make_service: Callable[..., SketchService], ledger: MemoryUsageLedger
) -> None:
    service = make_service(daily=6, active=1)
    original, _ = service.submission.submit_job("alice", _request(num_images=2))
    _deliver_all(service)
    service.submission.submit_job("alice", _request(num_images=2))  # holds the one slot
    made = service.batch.regenerate(job_ids=[original.job_id])
    assert len(made) == 1 and ledger.usage("alice").images_used == 6
    assert service.batch.regenerate(job_ids=[original.job_id]) == []  # budget spent: skipped


# -- HTTP -------------------------------------------------------------------------------------


@pytest.fixture
def client(make_service: Callable[..., SketchService]) -> Iterator[Client]:
    service = make_service(daily=3, active=5)
    yield Client(Api(lambda: service, DevAuthenticator, web_config={"auth": "dev"}, user_streams=1))


def _auth(uid: str) -> dict[str, str]:
    return {"Authorization": f"Bearer dev:{uid}"}


def test_http_429_with_retry_after_and_403_naming_the_field(client: Client) -> None:
    body = {"brief": "golf mascot", "style_id": "test-ink", "num_images": 3}
    assert client.post("/v1/jobs", json=body, headers=_auth("alice")).status_code == 202
    refused = client.post("/v1/jobs", json=body, headers=_auth("alice"))
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    error = refused.get_json()["error"]
    assert error["code"] == "budget_exhausted" and error["field"] == "num_images"
    assert "0 of your 3" in error["message"]
    pro = client.post("/v1/jobs", json={**body, "model": "pro"}, headers=_auth("bob"))
    assert pro.status_code == 403
    assert pro.get_json()["error"] == {
        "code": "not_entitled",
        "message": pro.get_json()["error"]["message"],
        "field": "model",
    }


def test_http_usage_reports_the_callers_day(client: Client) -> None:
    body = {"brief": "golf mascot", "style_id": "test-ink", "num_images": 2}
    client.post("/v1/jobs", json=body, headers=_auth("alice"))
    usage = client.get("/v1/usage", headers=_auth("alice")).get_json()
    assert usage["images_used"] == 2 and usage["images_limit"] == 3 and usage["plan"] == "free"
    assert usage["active_jobs"] == 1 and usage["active_jobs_limit"] == 5
    assert usage["day"] == datetime.now(UTC).date().isoformat() and usage["cost_usd_today"] == 0
    assert client.get("/v1/usage", headers=_auth("bob")).get_json()["images_used"] == 0
    assert client.get("/v1/usage").status_code == 401


def test_stream_slots_per_user_released_on_close() -> None:
    slots = StreamSlots(per_user=2)
    slots.acquire("alice")
    held = slots.hold("alice", iter([b"a", b"b"]))
    slots.acquire("alice")
    with pytest.raises(LimitError) as error:
        slots.acquire("alice")
    assert error.value.code == "too_many_streams" and error.value.field == "streams"
    slots.acquire("bob")  # another user is unaffected
    assert list(held) == [b"a", b"b"]  # ran out: released
    held.close()  # closing again gives nothing back twice
    assert slots.open_streams("alice") == 1
    never_started = slots.hold("alice", iter([b"x"]))
    never_started.close()
    assert slots.open_streams("alice") == 0


def test_http_too_many_streams(client: Client, make_service: Callable[..., SketchService]) -> None:
    body = {"brief": "golf mascot", "style_id": "test-ink", "num_images": 1}
    job_id = client.post("/v1/jobs", json=body, headers=_auth("alice")).get_json()["job_id"]
    first = client.get(f"/v1/jobs/{job_id}/events", headers=_auth("alice"), buffered=False)
    assert first.status_code == 200
    second = client.get(f"/v1/jobs/{job_id}/events", headers=_auth("alice"), buffered=False)
    assert second.status_code == 429 and second.get_json()["error"]["code"] == "too_many_streams"
    first.close()
    third = client.get(f"/v1/jobs/{job_id}/events", headers=_auth("alice"), buffered=False)
    assert third.status_code == 200
    third.close()


# -- the admin CLI ------------------------------------------------------------------------------


def test_cli_sets_a_plan_and_prints_usage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from sketchgen.cli import main

    monkeypatch.delenv("SKETCHGEN_JOB_STORE", raising=False)
    get_settings.cache_clear()
    data = str(tmp_path / "serve")
    try:
        args = ["accounts", "set", "carol", "--plan", "pro", "--daily-images", "9"]
        assert main([*args, "--data-dir", data]) == 0
        assert json.loads(capsys.readouterr().out)["plan"] == "pro"
        assert main(["usage", "carol", "--data-dir", data]) == 0
        usage = json.loads(capsys.readouterr().out)
        assert usage["plan"] == "pro" and usage["images_limit"] == 9 and usage["models"] is None
        assert main(["accounts", "set", "carol", "--data-dir", data]) == 2  # nothing to set
        assert main(["accounts", "set", "carol", "--plan", "gold", "--data-dir", data]) == 2
    finally:
        get_settings.cache_clear()
