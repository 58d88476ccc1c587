"""The job's documents on the Firestore emulator behind the contention model: a job's own
document is written a bounded number of times (created, cancelled, final), each sketch's
document a few times, and with the model refusing writes past 1/s (burst 3) per document
every sketch still ends once, with one model call each and one finaliser."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.cloud import firestore

from dev.processes import free_port
from sketchgen.adapters.gcp.firestore_job_store import FirestoreJobStore
from sketchgen.adapters.local.blob_store import LocalBlobStore
from sketchgen.bootstrap import assemble
from sketchgen.jobs import JobRequest
from sketchgen.services import ServiceConfig, SketchService
from sketchgen.styles import StyleRegistry
from sketchgen.testing.contention import ContentionModel
from sketchgen.testing.firestore_proxy import FirestoreContentionProxy
from tests.helpers.fakes import CollectingQueue, FakeImageModel

PROJECT = "sketchgen-job-documents"


@pytest.fixture
def contended(firestore_emulator: str) -> Iterator[tuple[firestore.Client, ContentionModel]]:
    model = ContentionModel()
    with FirestoreContentionProxy(firestore_emulator, free_port(), model) as proxy:
        os.environ["FIRESTORE_EMULATOR_HOST"] = proxy.host  # read when a client is made
        try:
            client = firestore.Client(project=PROJECT)
        finally:
            os.environ["FIRESTORE_EMULATOR_HOST"] = firestore_emulator
        yield client, model


def _service(client: firestore.Client, model: FakeImageModel, root: Path) -> SketchService:
    return assemble(
        jobs=FirestoreJobStore(client), blobs=LocalBlobStore(root), queue=CollectingQueue(),
        model=model, styles=StyleRegistry(), config=ServiceConfig(lease_s=30, lease_wait_s=30),
    )  # fmt: skip


def _deliver_at_once(service: SketchService) -> list[bool]:
    tasks = list(service.queue.tasks)
    acked: list[bool] = []
    threads = [
        threading.Thread(target=lambda t=t: acked.append(service.worker.run_sketch(t)))
        for t in tasks
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return acked


def _writes(model: ContentionModel, path: str) -> int:
    suffix = f"/documents/{path}"
    return sum(c.total for d, c in model.counts().items() if d.endswith(suffix))


def test_a_six_sketch_job_writes_its_own_document_twice(
    contended: tuple[firestore.Client, ContentionModel], tmp_path: Path
) -> None:
    client, writes = contended
    model = FakeImageModel(delay_s=0.2)
    service = _service(client, model, tmp_path)
    request = JobRequest(brief="golf mascot", style_id="loose-ink-mascot", num_images=6)
    job, _ = service.submission.submit_job("alice", request)
    # Every message twice, all at once: duplicates wait out the live lease, then ack.
    service.queue.tasks = service.queue.tasks * 2
    assert all(_deliver_at_once(service))
    final = service.submission.get_job("alice", job.job_id)
    assert final.status == "done" and len(model.requests) == 6  # one call per sketch
    assert sorted(s.seq for s in final.sketches.values()) == list(range(1, 7))
    assert _writes(writes, f"jobs/{job.job_id}") == 2  # created, final
    for i in range(6):
        assert _writes(writes, f"jobs/{job.job_id}/sketches/{i}") == 2  # claimed, ended
    assert _writes(writes, f"jobs/{job.job_id}/markers/final") >= 1  # one create succeeded
    raw = client.collection("jobs").document(job.job_id).get().to_dict()
    assert raw["status"] == "done" and raw["sketches"]["5"]["status"] == "ok"  # complete copy
    counts = writes.counts()
    assert max(c.max_1s for c in counts.values()) <= 3  # the model held every document to it


def test_a_cancelled_job_writes_its_own_document_three_times(
    contended: tuple[firestore.Client, ContentionModel], tmp_path: Path
) -> None:
    client, writes = contended
    hold = threading.Event()
    model = FakeImageModel(hold=hold)
    service = _service(client, model, tmp_path)
    request = JobRequest(brief="golf mascot", style_id="loose-ink-mascot", num_images=3)
    job, _ = service.submission.submit_job("alice", request)
    first = service.queue.tasks[0]
    drawing = threading.Thread(target=service.worker.run_sketch, args=(first,))
    drawing.start()
    assert model.entered.acquire(timeout=30)
    cancelled = service.submission.cancel_job("alice", job.job_id)
    hold.set()
    drawing.join(30)
    assert cancelled.status == "cancelled"
    assert [s.status for s in cancelled.sketches.values()] == ["cancelled"] * 3
    assert _writes(writes, f"jobs/{job.job_id}") == 3  # created, cancelled, final


def test_documents_with_fields_this_version_does_not_know_are_read(
    firestore_emulator: str,
) -> None:
    """A rolling deploy: the job's and a sketch's documents carry a field a newer version
    wrote; this version reads them, fields ignored, and keeps working on the job."""
    from tests.contract.job_store_contract import make_job

    client = firestore.Client(project=PROJECT)
    store = FirestoreJobStore(client)
    job = make_job(n=2)
    store.create_job(job)
    ref = client.collection("jobs").document(job.job_id)
    ref.update({"priority_boost": 3, "plan.prompt_spec.mood": "sunny"})
    store.claim_sketch(job.job_id, 0, worker="w", lease_s=60)
    ref.collection("sketches").document("0").update({"thumbnail": "t.png"})
    read = store.get_job(job.job_id)
    assert read is not None and read.sketch(0).status == "running"
    assert read.plan == job.plan
    assert store.claim_sketch(job.job_id, 1, worker="w", lease_s=60).attempt == 1
