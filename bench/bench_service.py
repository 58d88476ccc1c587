"""The service on the `make dev` topology (emulators + functions-framework processes), with
the model served by the Gemini-protocol server at latency L."""

from __future__ import annotations

import json
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.common import median
from dev.processes import free_port
from dev.topology import DevTopology
from sketchgen.testing.gemini_server import FakeGeminiServer
from tests.helpers.auth import bearer

LATENCY_S = 2.0
SKETCHES = 6
RUNS = 5
AUTH = bearer("bench")


def _post(url: str, sketches: int) -> tuple[float, dict[str, Any]]:
    body = json.dumps(
        {"brief": "playful golf mascot", "style_id": "loose-ink-mascot", "num_images": sketches}
    ).encode()
    request = urllib.request.Request(
        f"{url}/v1/jobs",
        data=body,
        method="POST",
        headers={**AUTH, "Content-Type": "application/json"},
    )
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=30) as response:
        payload = json.loads(response.read())
    return start, payload


def _follow(events_url: str, start: float) -> tuple[float, float]:
    """(POST → first sketch event, POST → done event), reading the stream as it arrives."""
    request = urllib.request.Request(events_url, headers=AUTH)
    first = None
    with urllib.request.urlopen(request, timeout=120) as response:
        for raw in response:
            line = raw.decode().strip()
            if line == "event: sketch" and first is None:
                first = time.perf_counter() - start
            if line == "event: done":
                return first or float("nan"), time.perf_counter() - start
    raise RuntimeError("stream ended without done")


def run() -> dict[str, Any]:
    with FakeGeminiServer(latency_s=LATENCY_S) as gemini, tempfile.TemporaryDirectory() as tmp:
        topology = DevTopology(
            port=free_port(),
            data_dir=Path(tmp),
            values={"GEMINI_API_KEY": "bench-key", "GOOGLE_GEMINI_BASE_URL": gemini.url},
        )
        topology.start()
        try:
            for _ in range(2):  # warm up: imports, connection pools, gunicorn threads
                _follow(_post(topology.url, SKETCHES)[1]["events_url"], time.perf_counter())
            accepted, firsts, dones = [], [], []
            for _ in range(RUNS):
                start, payload = _post(topology.url, SKETCHES)
                accepted.append(time.perf_counter() - start)
                first, done = _follow(payload["events_url"], start)
                firsts.append(first)
                dones.append(done)
            gemini.latency_s = 0.0
            for _ in range(20):  # 202 latency alone, model out of the way
                start, _payload = _post(topology.url, 1)
                accepted.append(time.perf_counter() - start)
        finally:
            topology.stop()
    return {
        "latency_s": LATENCY_S,
        "sketches": SKETCHES,
        "runs": RUNS,
        "accepted_ms_median": round(median(accepted) * 1000, 1),
        "accepted_ms_max": round(max(accepted) * 1000, 1),
        "first_sketch_s": round(median(firsts), 3),
        "done_s": round(median(dones), 3),
    }


def markdown(results: dict[str, Any]) -> str:
    latency = results["latency_s"]
    return "\n".join(
        [
            f"`make dev` topology, model latency L = {latency} s, {results['sketches']} sketches, "
            f"median of {results['runs']} jobs (202: median of {results['runs'] + 20} POSTs).",
            "",
            "| measure | result | target |",
            "|---|---|---|",
            f"| POST → 202 | {results['accepted_ms_median']:.0f} ms median "
            f"(max {results['accepted_ms_max']:.0f} ms) | ≤ 100 ms median |",
            f"| POST → first `sketch` event | {results['first_sketch_s']:.2f} s "
            f"| ≤ {latency + 0.5:.1f} s |",
            f"| POST → `done` | {results['done_s']:.2f} s | ≤ {latency + 1.0:.1f} s |",
        ]
    )
