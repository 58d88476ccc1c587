"""One job on `make dev` is one trace (docs/decisions/0030): the POST, each Pub/Sub message,
each worker delivery with its model call and Storage write, the finaliser and the event stream,
written by three functions as OTLP JSON lines under the topology's traces folder; its log lines
carry the trace, and its metrics reach the metrics files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dev.definition import REPO
from dev.topology import DevTopology
from sketchgen.cli_trace import Span, job_traces, read_spans
from sketchgen.testing.gemini_server import FakeGeminiServer
from tests.helpers.auth import sign_up
from tests.helpers.topology import dev_topology
from tests.helpers.waiting import wait_until

SKETCHES = 6


@pytest.fixture(scope="module")
def gemini() -> Iterator[FakeGeminiServer]:
    with FakeGeminiServer(latency_s=0.2) as server:
        yield server


@pytest.fixture(scope="module")
def topology(
    gemini: FakeGeminiServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DevTopology]:
    yield from dev_topology(gemini, tmp_path_factory.mktemp("traces"))


def _stream_until_done(topology: DevTopology, job_id: str, auth: dict[str, str]) -> list[str]:
    events = []
    url = f"{topology.url}/v1/jobs/{job_id}/events"
    with httpx.stream("GET", url, headers=auth, timeout=60) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("event: "):
                events.append(line.removeprefix("event: "))
                if events[-1] == "done":
                    break
    return events


def _complete_trace(folder: Path, job_id: str, timeout_s: float = 60) -> dict[str, list[Span]]:
    """The job's trace(s) once the stream's and the finaliser's spans are written and every
    span's parent is: each process exports in batches of its own, so a delivery's span can
    land after the finaliser's (on a loaded runner, seconds after). A parent that never lands
    fails the wait, naming the orphans."""
    orphans: list[str] = []

    # The spans are files other processes write: polled, nothing signals their arrival.
    def complete() -> dict[str, list[Span]] | None:
        traces = job_traces(read_spans(folder), job_id) if folder.is_dir() else {}
        spans = [s for trace in traces.values() for s in trace]
        ids = {s.span_id for s in spans}
        orphans[:] = [s.name for s in spans if s.parent_id is not None and s.parent_id not in ids]
        names = {s.name for s in spans}
        return traces if {"stream", "finalize"} <= names and not orphans else None

    try:
        return wait_until(complete, "incomplete", timeout_s=timeout_s, interval_s=0.2)
    except AssertionError:
        raise AssertionError(f"the job's trace did not complete; orphans: {orphans}") from None


def test_one_job_is_one_trace_across_three_functions(topology: DevTopology) -> None:
    _, token = sign_up(topology.manifest()["auth_emulator_host"], f"{uuid.uuid4().hex}@x.io")
    auth = {"Authorization": f"Bearer {token}"}
    body = {"brief": "playful golf mascot", "style_id": "loose-ink-mascot", "num_images": SKETCHES}
    accepted = httpx.post(f"{topology.url}/v1/jobs", json=body, headers=auth, timeout=30)
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json()["job_id"]
    assert _stream_until_done(topology, job_id, auth)[-1] == "done"

    traces = _complete_trace(topology.data_dir / "traces", job_id)
    assert len(traces) == 1, f"the job is in {len(traces)} traces"
    ((trace_id, spans),) = traces.items()
    ids = {s.span_id for s in spans}
    roots = [s for s in spans if s.parent_id is None]
    assert [r.name for r in roots] == ["POST /v1/jobs"]
    assert all(s.parent_id in ids for s in spans if s.parent_id is not None), "orphan spans"
    services = {s.service for s in spans}
    assert {"generate", "sketch_worker", "stream"} <= services, services

    by_name: dict[str, list[Span]] = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)
    assert len(by_name["pubsub.publish"]) == SKETCHES
    calls = by_name["model.generate"]
    assert sorted(c.attributes["sketchgen.sketch_index"] for c in calls) == list(range(SKETCHES))
    assert all(c.attributes["gen_ai.response.finish_reason"] == "STOP" for c in calls)
    assert all(c.attributes["sketchgen.cost_usd"] > 0 for c in calls)
    assert all(c.attributes["sketchgen.job_id"] == job_id for c in calls)
    writes = [w.attributes["sketchgen.blob_key"] for w in by_name["storage.put"]]
    assert sorted(k for k in writes if k.endswith(".png")) == sorted(
        f"jobs/{job_id}/sketch_{i}.png" for i in range(SKETCHES)
    )
    (finalize,) = by_name["finalize"]
    assert finalize.attributes["sketchgen.job_status"] == "done"
    assert finalize.attributes["enduser.id"] == roots[0].attributes["enduser.id"]
    # Each model call hangs below a delivery, below the message that carried it.
    parents = {s.span_id: s for s in spans}
    for call in calls:
        delivery = parents[call.parent_id]
        assert delivery.name == "sketch_worker.deliver"
        assert parents[delivery.parent_id].name == "pubsub.publish"
    (stream,) = by_name["stream"]
    assert stream.parent_id == roots[0].span_id

    # Logs joined to the trace: the worker's lines name it the way Cloud Logging joins them.
    worker_log = "\n".join(
        p.read_text() for p in (topology.data_dir / "logs").glob("sketch_worker*")
    )
    joined = [
        json.loads(line)
        for line in worker_log.splitlines()
        if line.startswith("{") and trace_id in line
    ]
    assert joined, "no worker log line carries the job's trace"
    assert all(
        entry["logging.googleapis.com/trace"] == f"projects/{topology.project}/traces/{trace_id}"
        and entry["logging.googleapis.com/spanId"] in ids
        for entry in joined
    )

    # The waterfall a developer reads.
    shown = subprocess.run(
        [sys.executable, "-m", "sketchgen.cli", "trace", job_id,
         "--dir", str(topology.data_dir / "traces")],
        cwd=REPO, env=os.environ.copy(), capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert shown.splitlines()[0].startswith(f"trace {trace_id}: {len(spans)} spans")
    assert shown.splitlines()[1].startswith("POST /v1/jobs")
    assert any(line.startswith("      model.generate") for line in shown.splitlines())


def test_metrics_reach_the_metrics_files(topology: DevTopology) -> None:
    _, token = sign_up(topology.manifest()["auth_emulator_host"], f"{uuid.uuid4().hex}@x.io")
    auth = {"Authorization": f"Bearer {token}"}
    body = {"brief": "a lighthouse", "style_id": "loose-ink-mascot", "num_images": 3}
    accepted = httpx.post(f"{topology.url}/v1/jobs", json=body, headers=auth, timeout=30)
    assert accepted.status_code == 202, accepted.text
    assert _stream_until_done(topology, accepted.json()["job_id"], auth)[-1] == "done"
    wanted = {
        "sketchgen.model.latency",
        "sketchgen.job.time_to_done",
        "sketchgen.cost",
        "sketchgen.sketches",
        "sketchgen.streams.active",
    }
    seen: set[str] = set()

    def exported() -> bool:
        for path in (topology.data_dir / "metrics").glob("*.jsonl"):
            for line in path.read_text().splitlines():
                try:
                    data = json.loads(line)
                except json.JSONDecodeError:
                    continue
                for resource in data.get("resource_metrics", []):
                    for scope in resource.get("scope_metrics", []):
                        seen.update(m["name"] for m in scope.get("metrics", []))
        return wanted <= seen

    wait_until(exported, f"not all of {sorted(wanted)} were exported", timeout_s=60, interval_s=0.5)
    assert wanted <= seen, f"missing {wanted - seen}"
