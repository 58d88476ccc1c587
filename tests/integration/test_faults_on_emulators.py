"""Fault injection on the `make dev` topology: 30 % of model calls answer 503 and 10 % answer
with no image. Whatever happens, nothing is lost, nothing is drawn twice, and every record
agrees with what is stored."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import pytest

from dev.topology import DevTopology
from sketchgen.adapters.gcp.gcs_blob_store import GcsBlobStore
from sketchgen.testing.gemini_server import FakeGeminiServer
from tests.helpers.topology import dev_topology
from tests.integration.test_service_on_emulators import blobs, call, submit, wait_final

JOBS, SKETCHES = 10, 6


@pytest.fixture(scope="module")
def gemini() -> Iterator[FakeGeminiServer]:
    with FakeGeminiServer(latency_s=0.3, p_unavailable=0.3, p_no_image=0.1, seed=7) as server:
        yield server


@pytest.fixture(scope="module")
def topology(
    gemini: FakeGeminiServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DevTopology]:
    yield from dev_topology(
        gemini,
        tmp_path_factory.mktemp("faults"),
        lease_s=10.0,
        # One user's ten jobs at once: above the default active-job cap (docs/decisions/0012).
        env={"SKETCHGEN_USER_ACTIVE_JOBS": str(JOBS)},
    )


def test_ten_jobs_under_503s_and_missing_images(
    topology: DevTopology, gemini: FakeGeminiServer
) -> None:
    run = uuid.uuid4().hex[:6]
    job_ids = [submit(topology, f"mascot number {i} run {run}", n=SKETCHES) for i in range(JOBS)]
    finals = [wait_final(topology, job_id, timeout=240) for job_id in job_ids]
    time.sleep(1.0)  # any late duplicate delivery lands before counting
    store = GcsBlobStore(topology.bucket)
    outcomes = {"ok": 0, "failed": 0}
    for job_id, final in zip(job_ids, finals, strict=True):
        assert final["status"] in {"done", "partial", "failed"}
        stored = set(blobs(topology, job_id))
        metadata = json.loads(store.get(f"jobs/{job_id}/metadata.json"))
        assert metadata["status"] == final["status"]
        for sketch, record in zip(final["sketches"], metadata["sketches"], strict=True):
            outcomes[sketch["status"]] += 1
            png = f"jobs/{job_id}/sketch_{sketch['index']}.png"
            assert record["status"] == sketch["status"]
            assert (png in stored) == (sketch["status"] == "ok")  # no file without a status
            if sketch["status"] == "failed":
                assert sketch["error"] and sketch["finish_reason"]  # failed with its reason
            prompt = record["prompt"]
            answered = [
                r for r in gemini.requests if r.prompt.startswith(prompt) and r.behaviour == "image"
            ]
            # One image answer per ok sketch: none drawn twice, none lost.
            assert len(answered) == (1 if sketch["status"] == "ok" else 0), record["prompt"]
            assert record["attempts"] >= 1
    assert outcomes["ok"] + outcomes["failed"] == JOBS * SKETCHES
    assert outcomes["ok"] >= JOBS * SKETCHES * 0.9  # 503s are retried; misses get one retry
    unavailable = sum(r.behaviour == "unavailable" for r in gemini.requests)
    assert unavailable > 0.15 * len(gemini.requests)  # the faults really were injected
    status, _ = call(topology, "GET", "/healthz")
    assert status == 200
