"""Idempotency first (issue 23, item 7): the key is looked up before admission, so a retry of
an accepted job gets the original 202 even at the user's limits; the key stands for the whole
normalised submission (deadline and refinement included); another body under it is a 409
naming Idempotency-Key. Local job stores (memory and SQLite), over HTTP and the service."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from werkzeug.test import Client

from sketchgen.adapters.local.blob_store import LocalBlobStore
from sketchgen.adapters.local.job_store import MemoryJobStore, SqliteJobStore
from sketchgen.adapters.local.usage_ledger import MemoryUsageLedger
from sketchgen.api.auth import DevAuthenticator
from sketchgen.api.http import Api
from sketchgen.bootstrap import assemble
from sketchgen.generate.retry import RetryPolicy
from sketchgen.ports import JobStore
from sketchgen.services import ServiceConfig, SketchService
from sketchgen.services.spending import SpendControl, SpendLimits
from sketchgen.styles import StyleRegistry
from tests.helpers.fakes import CollectingQueue, FakeImageModel

FAST = ServiceConfig(
    lease_s=30, lease_wait_s=0, max_deliveries=3, retry=RetryPolicy(max_attempts=1)
)
ALICE = {"Authorization": "Bearer dev:alice"}
BODY = {"brief": "golf mascot", "style_id": "test-ink", "num_images": 2}


@pytest.fixture(params=["memory", "sqlite"])
def make_client(
    request: pytest.FixtureRequest, tmp_path: Path, style_registry: StyleRegistry
) -> Callable[..., tuple[Client, SketchService]]:
    def make(*, daily: int = 2, active: int = 1) -> tuple[Client, SketchService]:
        jobs: JobStore = (
            MemoryJobStore() if request.param == "memory" else SqliteJobStore(tmp_path / "j.db")
        )
        service = assemble(
            jobs=jobs,
            blobs=LocalBlobStore(tmp_path / "blobs"),
            queue=CollectingQueue(),
            model=FakeImageModel(),
            styles=style_registry,
            config=FAST,
            spend=SpendControl(
                MemoryUsageLedger(), SpendLimits(daily_images=daily, active_jobs=active)
            ),
        )
        return Client(Api(lambda: service, DevAuthenticator)), service

    return make


def _post(client: Client, key: str | None, **body: object) -> tuple[int, dict[str, object]]:
    headers = dict(ALICE)
    if key is not None:
        headers["Idempotency-Key"] = key
    answer = client.post("/v1/jobs", json={**BODY, **body}, headers=headers)
    return answer.status_code, answer.get_json()


def test_a_retry_of_an_accepted_job_gets_the_original_202_at_the_limits(
    make_client: Callable[..., tuple[Client, SketchService]],
) -> None:
    client, service = make_client(daily=2, active=1)
    status, first = _post(client, "k-1")
    assert status == 202
    # The day's images and the one active slot are both used: a new job is refused...
    assert _post(client, "k-2")[0] == 429
    # ...but the retry is the original answer, and charges nothing more.
    status, again = _post(client, "k-1")
    assert status == 202 and again["job_id"] == first["job_id"]
    assert service.spend is not None and service.spend.usage("alice")["images_used"] == 2


def test_the_same_key_with_any_other_part_of_the_body_is_a_409_naming_the_key(
    make_client: Callable[..., tuple[Client, SketchService]],
) -> None:
    client, _ = make_client(daily=20, active=5)
    assert _post(client, "k", deadline_s=60)[0] == 202
    for changed in ({"deadline_s": 120}, {}, {"num_images": 3}, {"brief": "golf mascot!"}):
        status, answer = _post(client, "k", **({"deadline_s": 60} | changed))
        if changed == {}:  # deadline_s left out is a different body too
            status, answer = _post(client, "k")
        assert status == 409, changed
        assert answer["error"]["field"] == "Idempotency-Key"
    assert _post(client, "k", deadline_s=60)[0] == 202


def test_a_refinement_is_keyed_by_its_instruction_too(
    make_client: Callable[..., tuple[Client, SketchService]],
) -> None:
    client, service = make_client(daily=20, active=5)
    status, job = _post(client, None, num_images=1)
    assert status == 202
    queue = service.queue
    assert isinstance(queue, CollectingQueue)
    for task in queue.tasks:
        service.worker.run_sketch(task)
    queue.tasks.clear()
    url = f"/v1/jobs/{job['job_id']}/sketches/0/refine"
    headers = {**ALICE, "Idempotency-Key": "r"}
    first = client.post(url, json={"instruction": "bigger club"}, headers=headers)
    assert first.status_code == 202
    again = client.post(url, json={"instruction": "bigger club"}, headers=headers)
    assert again.status_code == 202 and again.get_json()["job_id"] == first.get_json()["job_id"]
    other = client.post(url, json={"instruction": "smaller club"}, headers=headers)
    assert other.status_code == 409
    assert other.get_json()["error"]["field"] == "Idempotency-Key"
    # A plain job under the refinement's key is another submission as well.
    assert _post(client, "r", num_images=1)[0] == 409
