"""Spend control on `make dev` (docs/decisions/0012): a signed-in user's plan and day's images
through the deployed functions, the admin CLI against the topology's Firestore, and the limits
reaching each function through infra/functions.yaml."""

from __future__ import annotations

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
from tests.helpers.topology import dev_topology, final_job


@pytest.fixture(scope="module")
def gemini() -> Iterator[FakeGeminiServer]:
    with FakeGeminiServer(latency_s=0.2) as server:
        yield server


@pytest.fixture(scope="module")
def topology(
    gemini: FakeGeminiServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DevTopology]:
    yield from dev_topology(
        gemini, tmp_path_factory.mktemp("spend"), env={"SKETCHGEN_USER_DAILY_IMAGES": "6"}
    )


def _cli(topology: DevTopology, *args: str) -> str:
    """`sketchgen …` as an admin runs it against `make dev`: the topology's Firestore."""
    manifest = topology.manifest()
    env = {
        **os.environ,
        "SKETCHGEN_JOB_STORE": "firestore",
        "SKETCHGEN_PROJECT": str(manifest["project_id"]),
        "FIRESTORE_EMULATOR_HOST": str(manifest["firestore_emulator_host"]),
    }
    done = subprocess.run(
        [sys.executable, "-m", "sketchgen.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def _final(topology: DevTopology, job_id: str, auth: dict[str, str]) -> dict[str, Any]:
    return final_job(topology.url, job_id, auth)


def test_plan_budget_and_usage_on_make_dev(topology: DevTopology) -> None:
    uid, token = sign_up(topology.manifest()["auth_emulator_host"], f"{uuid.uuid4().hex}@x.io")
    auth = {"Authorization": f"Bearer {token}"}
    jobs = f"{topology.url}/v1/jobs"
    body = {"brief": "playful golf mascot", "style_id": "loose-ink-mascot", "num_images": 4}

    usage = httpx.get(f"{topology.url}/v1/usage", headers=auth, timeout=10).json()
    assert usage["plan"] == "free" and usage["images_limit"] == 6 and usage["images_used"] == 0

    pro = httpx.post(jobs, json={**body, "model": "pro"}, headers=auth, timeout=30)
    assert pro.status_code == 403 and pro.json()["error"]["field"] == "model"

    assert '"plan": "pro"' in _cli(topology, "accounts", "set", uid, "--plan", "pro")
    accepted = httpx.post(jobs, json={**body, "model": "pro"}, headers=auth, timeout=30)
    assert accepted.status_code == 202, accepted.text
    job = _final(topology, accepted.json()["job_id"], auth)
    assert job["status"] == "done"
    unit = price_per_image("pro", "1K")
    assert [s["cost_usd"] for s in job["sketches"]] == [unit] * 4
    assert job["cost_usd"] == pytest.approx(4 * unit)

    over = httpx.post(jobs, json={**body, "num_images": 3}, headers=auth, timeout=30)
    assert over.status_code == 429 and int(over.headers["Retry-After"]) > 0
    assert over.json()["error"]["code"] == "budget_exhausted"

    usage = httpx.get(f"{topology.url}/v1/usage", headers=auth, timeout=10).json()
    assert usage["plan"] == "pro" and usage["images_used"] == 4 and usage["active_jobs"] == 0
    assert usage["cost_usd_today"] == pytest.approx(4 * unit)
    assert '"images_used": 4' in _cli(topology, "usage", uid)


def test_a_cancel_storm_spends_no_more_than_the_daily_images(
    topology: DevTopology, gemini: FakeGeminiServer
) -> None:
    """Submit 3 sketches, cancel once the first model call is out, repeat (issue 23): each
    call sent is charged (docs/decisions/0025), so the calls made stay within the day's 6
    images and /v1/usage counts every one of them."""
    _, token = sign_up(topology.manifest()["auth_emulator_host"], f"{uuid.uuid4().hex}@x.io")
    auth = {"Authorization": f"Bearer {token}"}
    tag = uuid.uuid4().hex[:8]
    briefs = []
    gemini.latency_s = 1.0  # a call is in flight long enough to be cancelled mid-way
    try:
        for round_ in range(10):
            brief = f"storm {tag} {round_}"
            body = {"brief": brief, "style_id": "loose-ink-mascot", "num_images": 3}
            response = httpx.post(f"{topology.url}/v1/jobs", json=body, headers=auth, timeout=30)
            if response.status_code == 429:
                break
            assert response.status_code == 202, response.text
            briefs.append(brief)
            job_id = response.json()["job_id"]
            assert gemini.wait_for_calls(1, brief) >= 1  # a call is in flight: now cancel
            cancel = f"{topology.url}/v1/jobs/{job_id}/cancel"
            assert httpx.post(cancel, headers=auth, timeout=30).status_code == 202
            _final(topology, job_id, auth)
    finally:
        gemini.latency_s = 0.2
    # Every job is final: no worker sends another call (an abandoned drawing makes none).
    calls = sum(gemini.calls(brief) for brief in briefs)
    usage = httpx.get(f"{topology.url}/v1/usage", headers=auth, timeout=10).json()
    assert 0 < calls <= 6  # never past the daily limit
    assert usage["images_used"] >= calls  # every call counted
    assert len(briefs) < 10  # the budget ran out: the storm was stopped
