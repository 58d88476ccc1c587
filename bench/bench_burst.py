"""Burst: 20 jobs × 6 sketches from 4 users at once on the `make dev` topology, with every
Firestore write counted per document by the proxy in front of the emulator (issue 24).

Run twice: ``counted`` (the emulator as is: what the design writes, nothing refused) and
``contended`` (the contention model on: writes past 1/s, burst 3, per document refused with
ABORTED, as Firestore refuses them). The model is the local Gemini server with latency L.
A job's time to done is its final write's time minus its creation (the job JSON's
``updated_at - created_at``), so polling does not blur it.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import threading
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

from dev.processes import free_port
from dev.topology import DevTopology
from sketchgen.testing.contention import ContentionModel
from sketchgen.testing.gemini_server import FakeGeminiServer
from tests.helpers.auth import bearer

LATENCY_S = 1.0
USERS = 4
JOBS_PER_USER = 5
SKETCHES = 6
FINAL = {"done", "partial", "failed", "cancelled"}


def _call(url: str, user: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {**bearer(user), **({"Content-Type": "application/json"} if data else {})}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def _burst(topology: DevTopology, gemini: FakeGeminiServer) -> dict[str, Any]:
    submitted: list[tuple[str, str, str]] = []  # (user, job id, brief)
    refused: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(USERS * JOBS_PER_USER)

    def submit(user: str, n: int) -> None:
        brief = f"burst mascot {user} {n} {time.monotonic_ns()}"
        body = {"brief": brief, "style_id": "loose-ink-mascot", "num_images": SKETCHES}
        barrier.wait()
        status, answer = _call(f"{topology.url}/v1/jobs", user, "POST", body)
        with lock:
            if status == 202:
                submitted.append((user, answer["job_id"], brief))
            else:
                refused.append(status)

    threads = [
        threading.Thread(target=submit, args=(f"user-{u}", n))
        for u in range(USERS)
        for n in range(JOBS_PER_USER)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    finals: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + 300
    while len(finals) < len(submitted) and time.monotonic() < deadline:
        for user, job_id, _ in submitted:
            if job_id not in finals:
                _, job = _call(f"{topology.url}/v1/jobs/{job_id}", user)
                if job and job.get("status") in FINAL:
                    finals[job_id] = job
        time.sleep(1.0)
    return _summary(topology, gemini, submitted, refused, finals)


def _summary(
    topology: DevTopology,
    gemini: FakeGeminiServer,
    submitted: list[tuple[str, str, str]],
    refused: list[int],
    finals: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    times = sorted(
        (
            datetime.fromisoformat(job["updated_at"]) - datetime.fromisoformat(job["created_at"])
        ).total_seconds()
        for job in finals.values()
    )
    calls = [gemini.calls(brief) for _, _, brief in submitted]
    model = topology.firestore_writes_model
    assert model is not None
    kinds = model.by_kind()
    job_docs = [
        c.total for d, c in model.counts().items() if d.split("/documents/")[-1].count("/") == 1
        and d.split("/documents/")[-1].startswith("jobs/")
    ]  # fmt: skip
    return {
        "jobs": len(submitted) + len(refused),
        "accepted": len(submitted),
        "refused": refused,
        "done": sum(job["status"] == "done" for job in finals.values()),
        "sketches_ok": sum(s["status"] == "ok" for job in finals.values() for s in job["sketches"]),
        "model_calls": sum(calls),
        "calls_per_sketch": round(sum(calls) / max(1, len(submitted) * SKETCHES), 3),
        "p50_s": round(statistics.median(times), 2) if times else None,
        "p99_s": round(times[min(len(times) - 1, int(0.99 * len(times)))], 2) if times else None,
        "max_job_doc_writes": max(job_docs, default=0),
        "writes_refused": model.refused,
        "by_kind": {
            kind: {"total_max": c.total, "max_1s": c.max_1s, "max_10s": c.max_10s}
            for kind, c in sorted(kinds.items())
        },
    }


def _run(mode: str) -> dict[str, Any]:
    with (
        FakeGeminiServer(latency_s=LATENCY_S) as gemini,
        tempfile.TemporaryDirectory() as tmp,
        DevTopology(
            port=free_port(),
            data_dir=Path(tmp),
            values={
                "GEMINI_API_KEY": "bench-key",
                "GOOGLE_GEMINI_BASE_URL": gemini.url,
                "SKETCHGEN_USER_ACTIVE_JOBS": str(JOBS_PER_USER),
            },
            firestore_writes=mode,  # type: ignore[arg-type]
        ) as topology,
    ):
        return _burst(topology, gemini)


def run() -> dict[str, Any]:
    return {
        "latency_s": LATENCY_S,
        "users": USERS,
        "jobs_per_user": JOBS_PER_USER,
        "sketches": SKETCHES,
        "limit": {"rate_per_s": ContentionModel().rate, "burst": ContentionModel().burst},
        "counted": _run("counted"),
        "contended": _run("contended"),
    }


def markdown(data: dict[str, Any]) -> str:
    lines = [
        f"{data['users']} users × {data['jobs_per_user']} jobs × {data['sketches']} sketches "
        f"submitted at once on `make dev` (model latency L = {data['latency_s']:.0f} s), every "
        "Firestore write counted per document by the proxy in front of the emulator "
        "(`bench/bench_burst.py`). *counted*: the emulator as is; *contended*: writes past "
        f"{data['limit']['rate_per_s']:.0f}/s (burst {data['limit']['burst']:.0f}) per document "
        "refused with ABORTED, as Firestore does. Time to done: the job's final write minus "
        "its creation.",
        "",
        "| run | jobs done | sketches ok | calls/sketch | p50 | p99 | job doc writes (max) "
        "| refused writes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for mode in ("counted", "contended"):
        r = data[mode]
        lines.append(
            f"| {mode} | {r['done']}/{r['jobs']} | {r['sketches_ok']} | "
            f"{r['calls_per_sketch']} | {r['p50_s']} s | {r['p99_s']} s | "
            f"{r['max_job_doc_writes']} | {r['writes_refused']} |"
        )
    lines += [
        "",
        "Every write a job makes is under the limit: no document took more than 3 writes in a "
        "second or 10 in ten, a job's own document 2 in its life (created, final), each "
        "sketch's 2 (claimed, ended). The refused writes are the users' usage documents (each "
        "user's 5 jobs reserve and settle within seconds: 10 writes); the ledger retries them "
        "and every job still ended. The times are this machine's, not the design's: the run took "
        "as long with the contention model as without it (so not Firestore's limit), on 2 "
        "cores shared by other work while it ran with the emulators, the model server, the "
        "functions and the Python gRPC proxy that counts every Firestore call; which of them "
        "bounds it was not isolated. The p99 ≤ L + 4 s target was not met here.",
    ]
    lines += ["", "Writes per document, worst document of each kind (contended run):", ""]
    lines += ["| document | writes (life) | max in 1 s | max in 10 s |", "|---|---|---|---|"]
    for kind, c in data["contended"]["by_kind"].items():
        lines.append(f"| `{kind}` | {c['total_max']} | {c['max_1s']} | {c['max_10s']} |")
    lines += ["", "Same, counted run (nothing refused: what the design writes):", ""]
    lines += ["| document | writes (life) | max in 1 s | max in 10 s |", "|---|---|---|---|"]
    for kind, c in data["counted"]["by_kind"].items():
        lines.append(f"| `{kind}` | {c['total_max']} | {c['max_1s']} | {c['max_10s']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    result = run()
    print(json.dumps(result, indent=2))
