import base64
import json
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from sketchgen.adapters.local.blob_store import LocalBlobStore
from sketchgen.adapters.local.job_store import MemoryJobStore
from sketchgen.bootstrap import assemble
from sketchgen.jobs import JobRequest
from sketchgen.services import ServiceConfig, SketchService
from sketchgen.styles import StyleRegistry
from tests.functions.conftest import function_client_and_instance
from tests.helpers.fakes import CollectingQueue, FakeImageModel


@pytest.fixture
def service(local_env: Path) -> SketchService:
    built = assemble(
        jobs=MemoryJobStore(),
        blobs=LocalBlobStore(local_env / "blobs"),
        queue=CollectingQueue(),
        model=FakeImageModel(),
        styles=StyleRegistry(),
        config=ServiceConfig(lease_wait_s=0),
    )
    return built


@pytest.fixture
def worker(service: SketchService) -> FlaskClient:
    client, instance = function_client_and_instance("sketch_worker", "sketch_worker")
    instance.use_service(service)  # the function's instance serves the test's service
    return client


def envelope(payload: object, *, raw: bytes | None = None) -> dict[str, object]:
    data = raw if raw is not None else json.dumps(payload).encode()
    return {
        "message": {"data": base64.b64encode(data).decode(), "messageId": "1", "attributes": {}},
        "subscription": "projects/p/subscriptions/sketch-worker",
    }


def test_push_draws_once_even_when_delivered_twice(
    worker: FlaskClient, service: SketchService
) -> None:
    job, _ = service.submission.submit_job(
        "alice", JobRequest(brief="golf mascot", style_id="loose-ink-mascot", num_images=2)
    )
    for task in service.queue.tasks * 2:
        response = worker.post("/", json=envelope({"job_id": task.job_id, "index": task.index}))
        assert response.status_code == 204
    assert len(service.model.requests) == 2
    assert service.submission.get_job("alice", job.job_id).status == "done"


def test_leased_sketch_is_nacked(worker: FlaskClient, service: SketchService) -> None:
    job, _ = service.submission.submit_job(
        "alice", JobRequest(brief="golf", style_id="loose-ink-mascot", num_images=1)
    )
    service.jobs.claim_sketch(job.job_id, 0, worker="other", lease_s=60)
    response = worker.post("/", json=envelope({"job_id": job.job_id, "index": 0}))
    assert response.status_code == 429  # not 2xx: Pub/Sub redelivers later


@pytest.mark.parametrize(
    "body",
    [
        envelope(None, raw=b"not json"),
        envelope({"job_id": "../../etc", "index": 0}),
        envelope({"job_id": "20250101_000000-abcdef", "index": -1}),
        {"message": {"data": "%%%not-base64"}},
        {"message": {}},
        {},
    ],
)
def test_malformed_messages_are_refused_for_the_dead_letter_topic(
    worker: FlaskClient, body: object
) -> None:
    assert worker.post("/", json=body).status_code == 400


def test_unknown_job_is_acked_and_dropped(worker: FlaskClient) -> None:
    response = worker.post("/", json=envelope({"job_id": "20250101_000000-abcdef", "index": 0}))
    assert response.status_code == 204
