"""Issue 23's money path on `make dev`, through the deployed functions with the settings
reaching them from infra/functions.yaml: verified emails only, the deployment's daily
ceiling across users (and the operator's view of it), and DELETE /v1/me."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dev.topology import DevTopology
from sketchgen.pricing import price_per_image
from sketchgen.testing.gemini_server import FakeGeminiServer
from tests.helpers.auth import sign_up
from tests.helpers.topology import dev_topology
from tests.helpers.waiting import wait_until

CEILING_USD = 2.0
JOB = {
    "brief": "playful golf mascot",
    "style_id": "loose-ink-mascot",
    "num_images": 6,
    "model": "gemini-2.5-flash-image",
    "image_size": "1K",
}


@pytest.fixture(scope="module")
def gemini() -> Iterator[FakeGeminiServer]:
    with FakeGeminiServer(latency_s=0.1) as server:
        yield server


@pytest.fixture(scope="module")
def topology(
    gemini: FakeGeminiServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DevTopology]:
    env = {
        "SKETCHGEN_DEPLOYMENT_DAILY_USD": str(CEILING_USD),
        "SKETCHGEN_REQUIRE_VERIFIED_EMAIL": "true",
        "SKETCHGEN_USER_ACTIVE_JOBS": "20",
    }
    yield from dev_topology(gemini, tmp_path_factory.mktemp("money"), env=env)


def _verified_user(topology: DevTopology) -> tuple[str, dict[str, str]]:
    """A real Auth emulator account whose email is verified, and a fresh ID token saying so."""
    host = topology.manifest()["auth_emulator_host"]
    email = f"{uuid.uuid4().hex}@x.io"
    uid, _ = sign_up(host, email)
    base = f"http://{host}/identitytoolkit.googleapis.com/v1"
    project = topology.manifest()["project_id"]
    verified = httpx.post(
        f"{base}/projects/{project}/accounts:update",
        json={"localId": uid, "emailVerified": True},
        headers={"Authorization": "Bearer owner"},  # the emulator's admin credential
        timeout=10,
    )
    assert verified.status_code == 200, verified.text
    signed_in = httpx.post(
        f"{base}/accounts:signInWithPassword?key=emulator",
        json={"email": email, "password": "a-long-test-password", "returnSecureToken": True},
        timeout=10,
    ).json()
    return uid, {"Authorization": f"Bearer {signed_in['idToken']}"}


def _cli(topology: DevTopology, *args: str) -> dict[str, Any]:
    manifest = topology.manifest()
    env = {
        **os.environ,
        "SKETCHGEN_JOB_STORE": "firestore",
        "SKETCHGEN_PROJECT": str(manifest["project_id"]),
        "FIRESTORE_EMULATOR_HOST": str(manifest["firestore_emulator_host"]),
        "SKETCHGEN_DEPLOYMENT_DAILY_USD": str(CEILING_USD),
    }
    done = subprocess.run(
        [sys.executable, "-m", "sketchgen.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return dict(json.loads(done.stdout))


def test_unverified_emails_are_refused_and_verified_ones_let_in(topology: DevTopology) -> None:
    _, token = sign_up(topology.manifest()["auth_emulator_host"], f"{uuid.uuid4().hex}@x.io")
    refused = httpx.get(
        f"{topology.url}/v1/usage", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert refused.status_code == 403
    assert refused.json()["error"] == {
        "code": "email_not_verified",
        "message": refused.json()["error"]["message"],
        "field": "email",
    }
    _, auth = _verified_user(topology)
    assert httpx.get(f"{topology.url}/v1/usage", headers=auth, timeout=10).status_code == 200


def test_the_deployment_ceiling_holds_across_users_and_the_operator_sees_it(
    topology: DevTopology,
) -> None:
    job_usd = JOB["num_images"] * price_per_image("gemini-2.5-flash-image", "1K")
    users = [_verified_user(topology) for _ in range(3)]
    accepted, answer = 0, None
    for n in range(12):
        _, auth = users[n % len(users)]
        answer = httpx.post(f"{topology.url}/v1/jobs", json=JOB, headers=auth, timeout=30)
        if answer.status_code != 202:
            break
        accepted += 1
    assert answer is not None and answer.status_code == 429, answer.text if answer else None
    error = answer.json()["error"]
    assert error["code"] == "deployment_budget_exhausted" and error["field"] == "deployment"
    assert int(answer.headers["Retry-After"]) > 0
    assert accepted == int(CEILING_USD // job_usd)
    shown = _cli(topology, "usage", "--deployment")
    assert shown["ceiling_usd"] == CEILING_USD and shown["charges"] == accepted
    assert shown["spent_usd"] == pytest.approx(accepted * job_usd)


def test_delete_me_on_make_dev(topology: DevTopology) -> None:
    _, auth = _verified_user(topology)
    made = httpx.post(f"{topology.url}/v1/styles", json={"name": "Ink"}, headers=auth, timeout=30)
    assert made.status_code == 201, made.text
    style_id = made.json()["style_id"]
    gone = httpx.delete(f"{topology.url}/v1/me", headers=auth, timeout=60)
    assert gone.status_code == 200, gone.text
    assert gone.json()["deleted"]["styles"] == 1
    wait_until(
        lambda: (
            httpx.get(f"{topology.url}/v1/styles/{style_id}", headers=auth, timeout=10).status_code
            == 404
        ),
        "the deleted user's style is still served",
        timeout_s=10,
        interval_s=0.2,
    )
    assert httpx.delete(f"{topology.url}/v1/me", timeout=10).status_code == 401
