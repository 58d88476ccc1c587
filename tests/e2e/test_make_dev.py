"""`make dev` as a developer runs it: started, used, stopped, in the deployed shape.

The supervisor runs as its own process (``python -m dev.topology``, what ``make dev`` runs);
the tests read ``topology.json`` to find its parts, look at each function process's real
environment, and stop it the ways a developer does (SIGTERM, Ctrl-C, a kill -9).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dev.definition import REPO, load_definition
from dev.processes import free_port
from dev.topology import DevTopology
from sketchgen.testing.gemini_server import FakeGeminiServer
from tests.helpers.auth import bearer, sign_up, unsigned_token
from tests.helpers.topology import dev_topology, final_job
from tests.helpers.waiting import wait_until

AUTH = bearer("alice")
STOP_WITHIN_S = 15.0
_PLATFORM_ENV = {"THREADS", "GOOGLE_CLOUD_PROJECT"}
_EMULATOR_ENV = {
    "FIRESTORE_EMULATOR_HOST",
    "PUBSUB_EMULATOR_HOST",
    "STORAGE_EMULATOR_HOST",
    "FIREBASE_AUTH_EMULATOR_HOST",
}
_SYSTEM_ENV = {"PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "JAVA_HOME", "PYTHONPATH"}


class Supervisor:
    """`make dev` in a process of its own, as a developer starts it."""

    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dev.topology", "--port", str(self.port),
             "--data-dir", str(data_dir)],
            cwd=REPO, env={**os.environ, **env}, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        said = []  # anything printed before the ready line (warnings), for the failure message
        for line in self.process.stdout:
            if line.startswith("sketchgen dev ready"):
                break
            said.append(line)
        else:
            raise AssertionError("make dev ended before it was ready:\n" + "".join(said))
        self.ready_line = line
        self.said = "".join(said)
        self.manifest: dict[str, Any] = json.loads((data_dir / "topology.json").read_text())

    def pids(self) -> list[int]:
        return [int(p) for p in self.manifest["pids"]]

    def stop(self, signum: int) -> float:
        started = time.monotonic()
        os.kill(self.process.pid, signum)
        self.process.wait(timeout=60)
        return time.monotonic() - started


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ")[1][0] != "Z"  # zombies are gone


def _left(pids: list[int], within_s: float) -> list[int]:
    # Other processes' exits: polled, nothing signals this process when they are gone.
    with contextlib.suppress(AssertionError):
        wait_until(
            lambda: not [p for p in pids if _alive(p)],
            "processes outlived the topology",
            timeout_s=within_s,
            interval_s=0.1,
        )
    return [p for p in pids if _alive(p)]


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    pairs = (item.decode().split("=", 1) for item in raw if b"=" in item)
    return dict(pairs)


def test_it_says_how_to_connect_runs_each_function_as_deployed_and_always_stops(
    tmp_path: Path,
) -> None:
    # What a developer exports to try a setting locally reaches the functions the definition
    # gives it to; what the topology owns (the sign-in, where its parts are) stays its own.
    tried = {"SKETCHGEN_USER_ACTIVE_JOBS": "7", "SKETCHGEN_USER_DAILY_IMAGES": "11",
             "SKETCHGEN_MODEL_RPM": "30", "SKETCHGEN_QUOTA_WAIT_S": "45"}  # fmt: skip
    env = {"GEMINI_API_KEY": "developer-key", "GOOGLE_API_KEY": "", "SKETCHGEN_AUTH": "leak",
           "SKETCHGEN_NOT_IN_THE_DEFINITION": "1", **tried}  # fmt: skip
    definition = load_definition()
    for round_, signum in enumerate((signal.SIGTERM, signal.SIGINT, signal.SIGTERM)):
        supervisor = Supervisor(tmp_path / f"round{round_}", env)
        manifest = supervisor.manifest
        assert str(tmp_path / f"round{round_}" / "topology.json") in supervisor.ready_line
        for key in ("api_url", "project_id", "firestore_emulator_host", "pubsub_emulator_host",
                    "storage_emulator_host", "auth_emulator_host"):  # fmt: skip
            assert manifest[key], key
        assert set(manifest["functions"]) == set(definition.functions)
        assert httpx.get(f"{manifest['api_url']}/healthz").status_code == 200

        if round_ == 0:  # each function gets exactly its cloud variables, nothing of the shell
            for name, entry in manifest["functions"].items():
                function = definition.functions[name]
                seen = set(_environ(entry["pid"])) - _SYSTEM_ENV - _EMULATOR_ENV - _PLATFORM_ENV
                expected = set(definition.env_names(name)) | set(function.secrets)
                assert seen <= expected, f"{name} has variables its cloud twin lacks"
                assert ("GEMINI_API_KEY" in seen) == ("GEMINI_API_KEY" in function.secrets)
                # The cloud's sign-in, not the shell's value nor a local-only mode.
                assert _environ(entry["pid"])["SKETCHGEN_AUTH"] == "firebase"
                for tried_name, value in tried.items():
                    if tried_name in expected:
                        assert _environ(entry["pid"])[tried_name] == value, (name, tried_name)
            assert "not using the exported SKETCHGEN_AUTH='leak'" in supervisor.said
            # The settings take effect: the page's usage view shows the exported limits.
            _, token = sign_up(manifest["auth_emulator_host"], "tries@example.com")
            usage = httpx.get(
                f"{manifest['api_url']}/v1/usage",
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,  # the first request of a function on a loaded machine
            ).json()
            assert (usage["images_limit"], usage["active_jobs_limit"]) == (11, 7), usage

        pids = supervisor.pids()
        assert supervisor.stop(signum) < STOP_WITHIN_S
        assert _left(pids, 2.0) == [], f"left running after {signal.Signals(signum).name}"
        assert not (tmp_path / f"round{round_}" / "topology.json").exists()


def test_a_killed_supervisor_leaves_nothing_running(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path, {})
    pids = supervisor.pids()
    supervisor.stop(signal.SIGKILL)  # no clean-up code runs
    assert _left(pids, 10.0) == [], "processes outlived a killed make dev"


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
        topology.start_function("sketch_worker")
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
