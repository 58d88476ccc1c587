"""The whole service as deployed, locally: functions-framework processes, the Firestore and
Pub/Sub emulators, the Cloud Storage emulator, a push subscription, and the real SDK talking
to our Gemini-protocol server."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from dev.topology import DevTopology
from sketchgen.adapters.gcp.firestore_job_store import FirestoreJobStore
from sketchgen.adapters.gcp.gcs_blob_store import GcsBlobStore
from sketchgen.adapters.gcp.pubsub_task_queue import PubSubTaskQueue
from sketchgen.ports import SketchTask
from sketchgen.testing.gemini_server import FakeGeminiServer
from tests.helpers.auth import bearer
from tests.helpers.topology import dev_topology, final_job
from tests.helpers.waiting import wait_until

# make dev signs in only through the Firebase Auth emulator, as the cloud signs in with Firebase.
ALICE = bearer("alice")
BOB = bearer("bob")


@pytest.fixture(scope="module")
def gemini() -> Iterator[FakeGeminiServer]:
    with FakeGeminiServer(latency_s=0.5) as server:
        yield server


@pytest.fixture(scope="module")
def topology(
    gemini: FakeGeminiServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DevTopology]:
    yield from dev_topology(
        gemini,
        tmp_path_factory.mktemp("dev"),
        # Short, so a killed worker's sketch is taken over within the test. The worker renews
        # it while it draws and while it records and uploads (a 4 s lease once ran out during
        # an upload on a loaded runner, before the renewals covered it).
        lease_s=4.0,
        env={"SKETCHGEN_MODEL_TIMEOUT_S": "10"},
    )


def call(
    topo: DevTopology, method: str, path: str, body: Any = None, headers: dict[str, str] = ALICE
) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        topo.url + path,
        data=data,
        method=method,
        headers={**headers, **({"Content-Type": "application/json"} if data else {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def submit(topo: DevTopology, brief: str, n: int = 3, **extra: Any) -> str:
    status, body = call(
        topo,
        "POST",
        "/v1/jobs",
        {"brief": brief, "style_id": "loose-ink-mascot", "num_images": n, **extra},
    )
    assert status == 202, body
    return str(body["job_id"])


def wait_final(
    topo: DevTopology, job_id: str, timeout: float = 90, headers: dict[str, str] = ALICE
) -> dict[str, Any]:
    """The job once it has ended: its event stream closes then (no polling)."""
    return final_job(topo.url, job_id, headers, timeout_s=timeout)


def sse(
    topo: DevTopology, job_id: str, last_id: int | None = None
) -> list[tuple[int, str, dict[str, Any]]]:
    headers = {**ALICE, **({"Last-Event-ID": str(last_id)} if last_id is not None else {})}
    request = urllib.request.Request(f"{topo.url}/v1/jobs/{job_id}/events", headers=headers)
    with urllib.request.urlopen(request, timeout=90) as response:
        text = response.read().decode()
    events = []
    for block in text.split("\n\n"):
        fields = dict(
            line.split(": ", 1)
            for line in block.splitlines()
            if ": " in line and not line.startswith(":")
        )
        if "event" in fields:
            events.append((int(fields["id"]), fields["event"], json.loads(fields["data"])))
    return events


def blobs(topo: DevTopology, job_id: str) -> list[str]:
    from google.cloud import storage

    client = storage.Client(project=topo.project)
    return sorted(b.name for b in client.list_blobs(topo.bucket, prefix=f"jobs/{job_id}/"))


def test_a_job_end_to_end_with_events(topology: DevTopology, gemini: FakeGeminiServer) -> None:
    brief = f"playful golf mascot {uuid.uuid4().hex[:6]}"
    job_id = submit(topology, brief, n=4)
    events = sse(topology, job_id)
    assert [e[0] for e in events] == [1, 2, 3, 4, 5]
    assert [e[1] for e in events] == ["sketch"] * 4 + ["done"]
    assert events[-1][2]["status"] == "done"
    with urllib.request.urlopen(events[0][2]["url"], timeout=10) as image:
        assert image.read()[:4] == b"\x89PNG"
    assert blobs(topology, job_id) == [
        f"jobs/{job_id}/{n}"
        for n in ("metadata.json", "sketch_0.png", "sketch_1.png", "sketch_2.png", "sketch_3.png")
    ]
    assert gemini.calls(brief) == 4
    metadata = json.loads(GcsBlobStore(topology.bucket).get(f"jobs/{job_id}/metadata.json"))
    assert metadata["status"] == "done" and metadata["model"]["used"] == "gemini-2.5-flash-image"
    resumed = sse(topology, job_id, last_id=2)
    assert [e[0] for e in resumed] == [3, 4, 5]


def test_every_message_twice_means_n_calls_and_n_files(
    topology: DevTopology, gemini: FakeGeminiServer
) -> None:
    brief = f"heroic space fox {uuid.uuid4().hex[:6]}"
    job_id = submit(topology, brief, n=3)
    PubSubTaskQueue(topology.topic()).publish([SketchTask(job_id, i) for i in range(3)])
    body = wait_final(topology, job_id)
    assert body["status"] == "done"
    # A late duplicate would be a fourth call: waited for (1.5 s), so it fails the test.
    assert gemini.wait_for_calls(4, brief, timeout_s=1.5) == 3
    assert len([b for b in blobs(topology, job_id) if b.endswith(".png")]) == 3


def test_worker_killed_mid_sketch_still_completes_once(
    topology: DevTopology, gemini: FakeGeminiServer, caplog: pytest.LogCaptureFixture
) -> None:
    brief = f"cute coffee cup character {uuid.uuid4().hex[:6]}"
    gemini.latency_s = 2.0
    try:
        job_id = submit(topology, brief, n=2)
        assert gemini.wait_for_calls(2, brief, timeout_s=20) >= 2
        topology.processes["sketch_worker"].kill()  # mid model call, before any write
        # Down for three deliveries of each sketch, as when a restart is slow under load: the
        # fourth must still come (on the emulator with a retry policy, it never did).
        wait_until(
            lambda: [r.message for r in caplog.records].count("push failed") >= 3 * 2,
            "the bridge never refused three deliveries of each sketch",
            timeout_s=30,
        )
        topology.restart_function("sketch_worker")
        body = wait_final(topology, job_id, timeout=120)
    finally:
        gemini.latency_s = 0.5
    assert body["status"] == "done"
    assert [s["status"] for s in body["sketches"]] == ["ok", "ok"]
    assert len([b for b in blobs(topology, job_id) if b.endswith(".png")]) == 2
    assert gemini.calls(brief) == 4  # the two lost calls were made again, once each


def test_firestore_listener_sees_progress_in_order(topology: DevTopology) -> None:
    store = FirestoreJobStore(project=topology.project)
    job_id = submit(topology, f"playful robot {uuid.uuid4().hex[:6]}", n=3)
    seqs: list[int] = []
    statuses: list[str] = []
    with store.watch_job(job_id) as snapshots:  # what a mobile client's listener receives
        for snapshot in snapshots:
            seqs.append(snapshot.event_seq)
            statuses.append(snapshot.status)
            if snapshot.is_final:
                break
    assert seqs == sorted(seqs) and seqs[-1] == 3
    assert statuses[-1] == "done" and "running" in statuses


def test_isolation_idempotency_and_cancel(topology: DevTopology, gemini: FakeGeminiServer) -> None:
    job_id = submit(topology, "golf mascot isolation", n=2)
    assert call(topology, "GET", f"/v1/jobs/{job_id}", headers=BOB)[0] == 404
    assert call(topology, "GET", f"/v1/jobs/{job_id}", headers={})[0] == 401
    request = urllib.request.Request(f"{topology.url}/v1/jobs/{job_id}/events", headers=BOB)
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request, timeout=10)
    assert error.value.code == 404

    body = {"brief": "idempotent golf", "style_id": "loose-ink-mascot", "num_images": 2}
    keyed = {**ALICE, "Idempotency-Key": f"key-{uuid.uuid4().hex}"}
    first, again = (
        call(topology, "POST", "/v1/jobs", body, keyed),
        call(topology, "POST", "/v1/jobs", body, keyed),
    )
    assert first[1]["job_id"] == again[1]["job_id"]
    assert call(topology, "POST", "/v1/jobs", {**body, "num_images": 3}, keyed)[0] == 409

    gemini.latency_s = 3.0
    try:
        brief = f"cancelled golf {uuid.uuid4().hex[:6]}"
        job_id = submit(topology, brief, n=6)
        status, _ = call(topology, "POST", f"/v1/jobs/{job_id}/cancel")
        assert status == 202
        final = wait_final(topology, job_id, timeout=60)
    finally:
        gemini.latency_s = 0.5
    statuses = [s["status"] for s in final["sketches"]]
    assert "cancelled" in statuses
    # A sketch claimed before the cancel may have called the model (it ends cancelled too,
    # its answer discarded); a sketch never claimed (attempts 0) never calls it.
    claimed = sum(s["attempts"] for s in final["sketches"])
    assert statuses.count("ok") + statuses.count("failed") <= gemini.calls(brief) <= claimed


def test_cancel_mid_call_ends_the_job_before_the_model_answers(
    topology: DevTopology, gemini: FakeGeminiServer
) -> None:
    """Cancel does not wait for model calls in flight: the calls are held at the model until
    every assertion about the cancelled job has passed — the worker too has stopped waiting
    for them and acked its deliveries — then let go, and their late results change nothing."""
    brief = f"held golf mascot {uuid.uuid4().hex[:6]}"
    gemini.when(brief, "held")
    worker_log = topology.processes["sketch_worker"].log_path
    abandoned_before = worker_log.read_text(errors="replace").count("the call is abandoned")
    store = FirestoreJobStore(project=topology.project)
    try:
        job_id = submit(topology, brief, n=2)
        assert gemini.wait_for_calls(2, brief, timeout_s=30) == 2  # both are being drawn
        with store.watch_job(job_id) as snapshots:  # a mobile client's listener
            assert call(topology, "POST", f"/v1/jobs/{job_id}/cancel")[0] == 202
            seen = next(s for s in snapshots if s.is_final)
        assert seen.status == "cancelled" and seen.metadata_path
        events = sse(topology, job_id)
        assert [(e[0], e[1], e[2]["status"]) for e in events] == [
            (1, "sketch", "cancelled"),
            (2, "sketch", "cancelled"),
            (3, "done", "cancelled"),
        ]
        assert events[-1][2]["metadata_url"]
        final = wait_final(topology, job_id, timeout=5)
        assert [s["status"] for s in final["sketches"]] == ["cancelled", "cancelled"]
        # The worker re-reads the job while the model draws: it abandons both calls (acks
        # its deliveries) while they are still held at the model.
        # The worker is another process: what it did is read from its log.
        wait_until(
            lambda: (
                worker_log.read_text(errors="replace").count("the call is abandoned")
                - abandoned_before
                >= 2
            ),
            "the worker kept waiting for the model",
            timeout_s=30,
            interval_s=0.1,
        )
        assert not [r for r in gemini.answered if brief in r.prompt]  # still held
    finally:
        gemini.release_held()
    # The held calls answer now, to nobody; a retry would be a third call, waited for (1 s).
    assert gemini.wait_for_calls(3, brief, timeout_s=1.0) == 2
    assert call(topology, "GET", f"/v1/jobs/{job_id}")[1] == final
    assert blobs(topology, job_id) == [f"jobs/{job_id}/metadata.json"]
    metadata = json.loads(GcsBlobStore(topology.bucket).get(f"jobs/{job_id}/metadata.json"))
    assert metadata["status"] == "cancelled" and metadata["images"] == []
