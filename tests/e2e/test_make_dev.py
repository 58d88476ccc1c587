"""`make dev` used in the deployed shape, on one long-lived topology: jobs drawn by the
real SDK path, the Firestore rules, the public origin, dead letters, the grants, the retry
policy, sign-in and mobile listeners. Starting and stopping it as a developer does is
tests/e2e/test_make_dev_supervisor.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dev.definition import REPO
from dev.topology import DevTopology
from sketchgen.testing.gemini_server import FakeGeminiServer
from tests.helpers.auth import bearer, sign_up, unsigned_token
from tests.helpers.topology import dev_topology, final_job

AUTH = bearer("alice")


# -- the deployed shape, on one long-lived topology ---------------------------------------------


@pytest.fixture(scope="module")
def gemini() -> Iterator[FakeGeminiServer]:
    with FakeGeminiServer(latency_s=0.2) as server:
        yield server


@pytest.fixture(scope="module")
def topology(
    gemini: FakeGeminiServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DevTopology]:
    yield from dev_topology(gemini, tmp_path_factory.mktemp("e2e"))


def _submit(topology: DevTopology, n: int = 2, **fields: object) -> str:
    body = {"brief": f"playful golf mascot {uuid.uuid4().hex[:6]}", "style_id": "loose-ink-mascot",
            "num_images": n, **fields}  # fmt: skip
    response = httpx.post(f"{topology.url}/v1/jobs", json=body, headers=AUTH, timeout=30)
    assert response.status_code == 202, response.text
    return str(response.json()["job_id"])


def _final(topology: DevTopology, job_id: str, timeout_s: float = 60.0) -> dict[str, Any]:
    return final_job(topology.url, job_id, AUTH, timeout_s)


def test_a_job_planned_without_a_key_is_drawn_by_the_real_model(
    topology: DevTopology, gemini: FakeGeminiServer
) -> None:
    """Regression for issue 12: the plan used to name the planning process's model (generate
    had no key then; since issue 16 it mounts one, for embeddings) and the worker then asked
    Gemini for `offline-sketch-v1` — a 404 on every sketch. The plan names the model table's
    model, whatever the planner runs."""
    job_id = _submit(topology, n=2)
    job = _final(topology, job_id)
    assert job["status"] == "done", job
    assert {r.model for r in gemini.requests} == {"gemini-2.5-flash-image"}
    metadata = httpx.get(job["metadata_url"], headers=AUTH, timeout=10).json()
    assert {s["model_used"] for s in metadata["sketches"]} == {"gemini-2.5-flash-image"}
    assert metadata["model"]["used"] == "gemini-2.5-flash-image"
    assert metadata["model"]["adapter"] == "nano-banana"  # the worker's, not the planner's


def test_the_firestore_rules_are_loaded(topology: DevTopology) -> None:
    job_id = _submit(topology, n=1)
    documents = (
        f"http://{topology.manifest()['firestore_emulator_host']}/v1/projects/"
        f"{topology.project}/databases/(default)/documents"
    )

    def as_user(uid: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {unsigned_token(uid, topology.project)}"}

    owner = httpx.get(f"{documents}/jobs/{job_id}", headers=as_user("alice"))
    assert owner.status_code == 200
    assert httpx.get(f"{documents}/jobs/{job_id}", headers=as_user("bob")).status_code == 403
    write = httpx.patch(
        f"{documents}/jobs/{job_id}",
        params={"updateMask.fieldPaths": "status"},
        json={"fields": {"status": {"stringValue": "cancelled"}}},
        headers=as_user("bob"),
    )
    assert write.status_code == 403
    own_write = httpx.patch(
        f"{documents}/jobs/{job_id}",
        params={"updateMask.fieldPaths": "status"},
        json={"fields": {"status": {"stringValue": "cancelled"}}},
        headers=as_user("alice"),
    )
    assert own_write.status_code == 403  # nobody writes through a client, not even the owner


def test_malformed_paths_are_4xx_through_the_public_origin(topology: DevTopology) -> None:
    for method, path in (("GET", "/v1/jobs/%00"), ("GET", "/v1/jobs/%00/events"),
                         ("POST", "/v1/jobs/%00/cancel"), ("GET", "/v1/jobs/%ff%fe"),
                         ("GET", "/v1/jobs/a%0d%0aX-Injected:%201")):  # fmt: skip
        response = httpx.request(method, f"{topology.url}{path}", headers=AUTH)
        assert 400 <= response.status_code < 500, (path, response.status_code, response.text)
        assert len(response.headers.get_list("content-type")) == 1
        if "%0a" not in path:  # Flask's catch-all route takes no newline: its own HTML 404
            assert response.json()["error"]["code"]


def test_the_page_is_served_once_with_one_content_type(topology: DevTopology) -> None:
    for path, kind in (("/", "text/html"), ("/assets/app.js", "text/javascript"),
                       ("/assets/app.css", "text/css")):  # fmt: skip
        response = httpx.get(f"{topology.url}{path}")
        assert response.status_code == 200
        assert len(response.headers.get_list("content-type")) == 1
        assert response.headers["content-type"].startswith(kind)
        for single in ("server", "date", "content-length"):
            assert len(response.headers.get_list(single)) <= 1, single


def test_a_sketch_that_fails_every_delivery_is_dead_lettered_and_failed(
    topology: DevTopology,
) -> None:
    """The worker is down for the whole retry policy (a crash loop looks the same to Pub/Sub):
    after max_delivery_attempts the message moves to the dead-letter topic, whose push to the
    worker's /dead-letter ends the sketch as failed, with the reason, once it is back."""
    import threading

    from google.cloud import pubsub_v1

    # A watch on the dead-letter topic: the worker comes back when the message has been
    # dead-lettered (5 refused deliveries, 1-10 s backoff), not after a guessed sleep.
    subscriber = pubsub_v1.SubscriberClient()
    watch = f"projects/{topology.project}/subscriptions/test-dead-letters-{uuid.uuid4().hex[:8]}"
    subscriber.create_subscription(name=watch, topic=topology.dead_letter_topic)
    dead_lettered: set[str] = set()
    arrived = threading.Event()

    def on_dead_letter(message: Any) -> None:
        dead_lettered.add(json.loads(message.data)["job_id"])
        message.ack()
        arrived.set()

    listening = subscriber.subscribe(watch, callback=on_dead_letter)
    worker = topology.processes["sketch_worker"]
    worker.kill()
    try:
        job_id = _submit(topology, n=1)
        deadline = time.monotonic() + 120
        while job_id not in dead_lettered and time.monotonic() < deadline:
            arrived.wait(max(0.0, deadline - time.monotonic()))
            arrived.clear()
        assert job_id in dead_lettered, "the message was never dead-lettered"
    finally:
        listening.cancel()
        topology.restart_function("sketch_worker")
        subscriber.delete_subscription(subscription=watch)
    job = _final(topology, job_id, timeout_s=90)
    sketch = job["sketches"][0]
    assert job["status"] == "failed"
    assert sketch["status"] == "failed" and sketch["finish_reason"] == "UNDELIVERABLE"
    assert "deliveries" in sketch["error"]


# -- the cloud's IAM, locally ------------------------------------------------------------------

_AS_STREAM = """
import json, sys
from dev.definition import load_definition
from dev.permissions import Resources, install
from google.api_core import exceptions
from google.cloud import firestore, pubsub_v1, storage

resources = json.loads(sys.argv[1])
install("stream", load_definition().functions["stream"].may, Resources(**resources))
outcome = {}
try:
    pubsub_v1.PublisherClient().publish(resources["topics"]["sketch"], b"{}").result(timeout=10)
    outcome["publish"] = "ok"
except exceptions.PermissionDenied as error:
    outcome["publish"] = "denied: " + error.message
db = firestore.Client()
try:
    db.collection("jobs").document("probe").set({"x": 1})
    outcome["firestore_write"] = "ok"
except exceptions.PermissionDenied as error:
    outcome["firestore_write"] = "denied: " + error.message
outcome["firestore_read"] = "ok" if db.collection("jobs").document("probe").get() else "?"
bucket = storage.Client().bucket(resources["buckets"]["outputs"])
try:
    bucket.blob("jobs/probe.txt").upload_from_string(b"x")
    outcome["upload"] = "ok"
except exceptions.Forbidden as error:
    outcome["upload"] = "denied: " + error.message
print(json.dumps(outcome))
"""


def test_a_function_may_do_only_what_the_definition_grants(topology: DevTopology) -> None:
    """The stream function reads jobs and blobs and signs URLs; anything more is refused with
    the error the cloud gives, before it reaches the (permissive) emulators."""
    result = subprocess.run(
        [sys.executable, "-c", _AS_STREAM, json.dumps(topology.resources())],
        env={**os.environ, **topology.emulator_env()}, cwd=REPO,
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["publish"].startswith("denied: User not authorized")
    assert outcome["firestore_write"].startswith("denied: Missing or insufficient permissions")
    assert outcome["firestore_read"] == "ok"
    assert (
        outcome["upload"].startswith("denied: ") and "storage.objects.create" in outcome["upload"]
    )


@pytest.fixture(scope="module")
def quota_topology(
    gemini: FakeGeminiServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DevTopology]:
    # One model call every 6 s and a 1 s wait for a slot: the second sketch of a job finds no
    # slot in time and the worker answers "later" (the retry policy brings it back).
    yield from dev_topology(
        gemini,
        tmp_path_factory.mktemp("requeue"),
        env={"SKETCHGEN_MODEL_RPM": "10", "SKETCHGEN_QUOTA_WAIT_S": "1"},
    )


def test_a_quota_refusal_comes_back_through_the_retry_policy(quota_topology: DevTopology) -> None:
    """Regression for issue 19 and issue 24: a sketch that found no model slot in time went
    back on the queue by a publish the deployment did not allow, then as an immediate new
    message (a storm while the quota stays short). Now its delivery answers "later" and the
    subscription's retry policy (played by the push bridge) brings it back; the worker has no
    publish grant, and the local IAM would refuse one."""
    job_id = _submit(quota_topology, n=3)
    job = _final(quota_topology, job_id, timeout_s=120)
    assert job["status"] == "done", job
    log = (quota_topology.data_dir / "logs" / "sketch_worker.log").read_text()
    assert "back in the queue after its backoff" in log  # the path ran
    assert "not authorized" not in log and "PermissionDenied" not in log


# -- sign-in and mobile listeners with the real SDKs -------------------------------------------


def test_make_dev_takes_only_the_auth_emulators_tokens(topology: DevTopology) -> None:
    auth_host = topology.manifest()["auth_emulator_host"]
    _, token = sign_up(auth_host, f"carol-{uuid.uuid4().hex[:6]}@example.com")
    real = httpx.get(f"{topology.url}/v1/styles", headers={"Authorization": f"Bearer {token}"})
    assert real.status_code == 200
    dev = httpx.get(f"{topology.url}/v1/styles", headers={"Authorization": "Bearer dev:alice"})
    assert dev.status_code == 401 and dev.json()["error"]["code"] == "unauthenticated"


def _listen(topology: DevTopology, job_id: str, email: str, *extra: str) -> tuple[int, list[Any]]:
    manifest = topology.data_dir / "topology.json"
    result = subprocess.run(
        ["node", str(REPO / "examples" / "mobile_listener.mjs"), job_id, "--topology",
         str(manifest), "--email", email, "--password", "a-long-test-password", *extra],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return result.returncode, lines


def test_a_mobile_listener_follows_its_job_and_nothing_else(topology: DevTopology) -> None:
    """The Firebase JS SDK (npm, as a React Native or web app has it), signed in on the Auth
    emulator, listening on the Firestore emulator under firestore.rules."""
    auth_host = topology.manifest()["auth_emulator_host"]
    owner = f"owner-{uuid.uuid4().hex[:6]}@example.com"
    other = f"other-{uuid.uuid4().hex[:6]}@example.com"
    _, token = sign_up(auth_host, owner)
    sign_up(auth_host, other)
    body = {"brief": "cute coffee cup character", "style_id": "loose-ink-mascot", "num_images": 2}
    response = httpx.post(
        f"{topology.url}/v1/jobs", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]

    code, lines = _listen(topology, job_id, owner, "--try-write")
    assert lines[0] == {"write": "permission-denied"}  # jobs change only through the API
    snapshots = lines[1:]
    assert code == 0 and snapshots[-1]["status"] == "done", lines
    assert set(snapshots[-1]["sketches"].values()) == {"ok"}
    # Never a regression: each snapshot ends at least as many sketches as the one before.
    ended = [
        sum(s != "pending" and s != "running" for s in x["sketches"].values()) for x in snapshots
    ]
    assert ended == sorted(ended)

    code, lines = _listen(topology, job_id, other)
    assert code == 3 and lines == [{"error": "permission-denied"}]
    code, lines = _listen(topology, "20200101_000000-000000", owner)
    assert code == 3 and lines == [{"error": "permission-denied"}]  # missing: refused, not empty
