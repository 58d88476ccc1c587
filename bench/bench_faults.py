"""Faults on the `make dev` topology: 10 jobs x 6 sketches while 30 % of model calls answer
503 and 10 % answer with no image. Counts lost sketches and duplicate image answers."""

from __future__ import annotations

import json
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.bench_service import AUTH
from dev.processes import free_port
from dev.topology import DevTopology
from sketchgen.adapters.gcp.gcs_blob_store import GcsBlobStore
from sketchgen.testing.gemini_server import FakeGeminiServer

JOBS, SKETCHES = 10, 6
P_UNAVAILABLE, P_NO_IMAGE, LATENCY_S = 0.3, 0.1, 0.5


def _job(url: str, job_id: str) -> dict[str, Any]:
    request = urllib.request.Request(f"{url}/v1/jobs/{job_id}", headers=AUTH)
    with urllib.request.urlopen(request, timeout=30) as response:
        job: dict[str, Any] = json.loads(response.read())
        return job


def _submit(url: str, brief: str) -> str:
    body = json.dumps({"brief": brief, "style_id": "loose-ink-mascot", "num_images": SKETCHES})
    headers = {**AUTH, "Content-Type": "application/json"}
    request = urllib.request.Request(
        f"{url}/v1/jobs", data=body.encode(), method="POST", headers=headers
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return str(json.loads(response.read())["job_id"])


def run() -> dict[str, Any]:
    with (
        FakeGeminiServer(latency_s=LATENCY_S, p_unavailable=P_UNAVAILABLE,
                         p_no_image=P_NO_IMAGE, seed=11) as gemini,
        tempfile.TemporaryDirectory() as tmp,
    ):  # fmt: skip
        topology = DevTopology(
            port=free_port(), data_dir=Path(tmp),
            values={"GEMINI_API_KEY": "bench-key", "GOOGLE_GEMINI_BASE_URL": gemini.url},
        )  # fmt: skip
        topology.start()
        try:
            started = time.perf_counter()
            # Distinct briefs, so every model call can be traced back to its one sketch.
            ids = [_submit(topology.url, f"golf mascot number {n}") for n in range(JOBS)]
            while True:
                jobs = [_job(topology.url, i) for i in ids]
                if all(j["status"] in {"done", "partial", "failed"} for j in jobs):
                    break
                time.sleep(0.25)
            elapsed = time.perf_counter() - started
            time.sleep(1.0)
            store = GcsBlobStore(topology.bucket)
            lost = duplicates = ok = failed = 0
            for job in jobs:
                meta = json.loads(store.get(f"jobs/{job['job_id']}/metadata.json"))
                for sketch in meta["sketches"]:
                    answers = sum(
                        r.prompt.startswith(sketch["prompt"]) and r.behaviour == "image"
                        for r in gemini.requests
                    )
                    if sketch["status"] == "ok":
                        ok += 1
                        duplicates += max(0, answers - 1)
                        lost += not store.exists(f"jobs/{job['job_id']}/{sketch['file']}")
                    else:
                        failed += 1
                        lost += not sketch.get("error")
            behaviours = [r.behaviour for r in gemini.requests]
        finally:
            topology.stop()
    return {
        "jobs": JOBS, "sketches": SKETCHES, "latency_s": LATENCY_S,
        "p_unavailable": P_UNAVAILABLE, "p_no_image": P_NO_IMAGE,
        "ok": ok, "failed": failed, "lost": lost, "duplicate_model_calls": duplicates,
        "model_calls": len(behaviours), "calls_503": behaviours.count("unavailable"),
        "calls_no_image": behaviours.count("NO_IMAGE"), "elapsed_s": round(elapsed, 2),
    }  # fmt: skip


def markdown(results: dict[str, Any]) -> str:
    total = results["jobs"] * results["sketches"]
    return "\n".join([
        f"`make dev` topology, {results['jobs']} jobs × {results['sketches']} sketches submitted "
        f"at once; model latency {results['latency_s']} s; {results['p_unavailable']:.0%} of "
        f"calls answer 503 and {results['p_no_image']:.0%} answer with no image.",
        "",
        "| measure | result | target |",
        "|---|---|---|",
        f"| sketches lost (no file and no reason) | {results['lost']} of {total} | 0 |",
        "| duplicate model calls for a sketch already made | "
        f"{results['duplicate_model_calls']} | 0 |",
        f"| sketches ok / failed with a reason | {results['ok']} / {results['failed']} | — |",
        f"| model calls (503s, no-image) | {results['model_calls']} ({results['calls_503']}, "
        f"{results['calls_no_image']}) | — |",
        f"| all {total} sketches ended after | {results['elapsed_s']:.1f} s | — |",
    ])  # fmt: skip
