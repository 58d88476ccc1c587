"""Burst: 20 jobs × 6 sketches from 4 users at once on the `make dev` topology, with every
Firestore write counted per document by the proxy in front of the emulator (issue 24).

Each run also says where the time went: the CPU seconds of every process of the topology
during the burst, the Firestore calls by method, and per sketch the seconds from the burst's
start to its publish, its delivery (the push relay runs in this process), its claim and end
(its document's writes, from the proxy) and its ack, with the model calls per second.

Run twice: ``counted`` (the emulator as is: what the design writes, nothing refused) and
``contended`` (the contention model on: writes past 1/s, burst 3, per document refused with
ABORTED, as Firestore refuses them). The model is the local Gemini server with latency L.
A job's time to done is its final write's time minus its creation (the job JSON's
``updated_at - created_at``), so polling does not blur it.
"""

from __future__ import annotations

import itertools
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

from dev.processes import free_port
from dev.push_bridge import PushBridge
from dev.topology import DevTopology
from sketchgen.testing.contention import ContentionModel, document_kind
from sketchgen.testing.firestore_proxy import _Forward
from sketchgen.testing.gemini_server import FakeGeminiServer
from tests.helpers.auth import bearer

LATENCY_S = 1.0
USERS = 4
JOBS_PER_USER = 5
SKETCHES = 6
FINAL = {"done", "partial", "failed", "cancelled"}


class _Trace:
    """Where a sketch's time goes: each delivery's publish, receipt and answer (the push relay
    runs in this process), read with the proxy's write times and the model server's arrivals."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.deliveries: list[dict[str, Any]] = []
        self.rpcs: dict[str, int] = {}  # Firestore calls through the proxy, by method
        self._original = PushBridge._push
        self._service = _Forward.service
        self._admit = ContentionModel.admit
        self.refused: dict[str, int] = {}  # refused commits, by the kinds they wrote

    def __enter__(self) -> _Trace:
        trace, original = self, self._original

        def push(bridge: PushBridge, message: Any) -> None:
            received = time.monotonic()
            published = message.publish_time.timestamp() - (time.time() - received)
            original(bridge, message)
            task = json.loads(message.data)
            with trace.lock:
                trace.deliveries.append(
                    {
                        "job_id": task.get("job_id"),
                        "index": task.get("index"),
                        "published": published,
                        "received": received,
                        "answered": time.monotonic(),
                    }
                )

        def service(forward: _Forward, details: Any) -> Any:
            method = details.method.rsplit("/", 1)[-1]
            with trace.lock:
                trace.rpcs[method] = trace.rpcs.get(method, 0) + 1
            return trace._service(forward, details)

        def admit(model: ContentionModel, documents: Any) -> bool:
            documents = list(documents)
            admitted = trace._admit(model, documents)
            if not admitted:
                kinds = "+".join(sorted({document_kind(d) for d in documents}))
                with trace.lock:
                    trace.refused[kinds] = trace.refused.get(kinds, 0) + 1
            return admitted

        # The three ignores below: methods patched for the run, restored in __exit__
        PushBridge._push = push  # type: ignore[method-assign]
        _Forward.service = service  # type: ignore[method-assign]
        ContentionModel.admit = admit  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        # The three ignores below: restoring what __enter__ patched
        PushBridge._push = self._original  # type: ignore[method-assign]
        _Forward.service = self._service  # type: ignore[method-assign]
        ContentionModel.admit = self._admit  # type: ignore[method-assign]


def _listen_overflows() -> int:
    """The kernel's count of connections dropped because a listening socket's accept queue
    was full (the client then retries its SYN 1 s, 3 s, ... later). Machine-wide."""
    with open("/proc/net/netstat") as f:
        lines = f.read().splitlines()
    for header, values in zip(lines[::2], lines[1::2], strict=False):
        if header.startswith("TcpExt:"):
            return int(dict(zip(header.split(), values.split(), strict=False))["ListenOverflows"])
    return 0


def _cpu_s(pid: int, *, descendants: bool = True) -> float:
    """CPU seconds (user + system) of a process and (unless not asked) every descendant
    still running."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            with open(f"/proc/{current}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            pass
        if descendants:
            todo += children.get(current, [])
    return total


def _cpu_by_process(topology: DevTopology) -> dict[str, float]:
    cpu = {n: _cpu_s(p.pid) for n, p in topology.processes.items() if p.pid is not None}
    # This process: the Firestore proxy, the push relays, the router and the model server.
    # (Its own threads only: the topology's processes are its children.)
    cpu["bench process (proxy, push relay, router, model server)"] = _cpu_s(
        os.getpid(), descendants=False
    )
    return cpu


def _call(url: str, user: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {**bearer(user), **({"Content-Type": "application/json"} if data else {})}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def _burst(topology: DevTopology, gemini: FakeGeminiServer, trace: _Trace) -> dict[str, Any]:
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
    with trace.lock:
        trace.rpcs.clear()
        trace.refused.clear()
    cpu_before = _cpu_by_process(topology)
    overflows_before = _listen_overflows()
    load_before = os.getloadavg()[0]
    wall_before = time.monotonic()
    pids = {n: p.pid for n, p in topology.processes.items()}
    print(f"burst starts (pid {os.getpid()}) {json.dumps(pids)}", file=sys.stderr, flush=True)
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
    cpu_after = _cpu_by_process(topology)
    wall = time.monotonic() - wall_before
    summary = _summary(topology, gemini, submitted, refused, finals)
    summary["cpu_s"] = {
        n: round(cpu_after[n] - cpu_before.get(n, 0.0), 1) for n in sorted(cpu_after)
    }
    summary["listen_overflows"] = _listen_overflows() - overflows_before
    # Other work on the machine (1-minute load average, at the start and the end).
    summary["load_avg"] = [round(load_before, 1), round(os.getloadavg()[0], 1)]
    summary["cpu_s_total"] = round(sum(summary["cpu_s"].values()), 1)
    summary["wall_s"] = round(wall, 1)
    with trace.lock:
        summary["firestore_calls"] = dict(sorted(trace.rpcs.items()))
        summary["refused_by_kind"] = dict(sorted(trace.refused.items()))
    summary["timeline"] = _timeline(topology, gemini, submitted, wall_before, trace)
    return summary


def _pct(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    at = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"p50": round(at(0.5), 2), "p90": round(at(0.9), 2), "max": round(ordered[-1], 2)}


def _timeline(
    topology: DevTopology,
    gemini: FakeGeminiServer,
    submitted: list[tuple[str, str, str]],
    start: float,
    trace: _Trace,
) -> dict[str, Any]:
    """Seconds from the burst's start to each stage of each sketch, and between stages."""
    model = topology.firestore_writes_model
    assert model is not None
    with model._lock:
        writes = {d.split("/documents/")[-1]: list(t) for d, t in model._writes.items()}
    with trace.lock:
        first: dict[tuple[str, int], dict[str, Any]] = {}
        for d in sorted(trace.deliveries, key=lambda d: d["received"]):
            first.setdefault((d["job_id"], d["index"]), d)
        deliveries = len(trace.deliveries)
    stages: dict[str, list[float]] = {}
    gaps: dict[str, list[float]] = {}
    for _, job_id, brief in submitted:
        calls = sorted(r.at for r in gemini.requests if brief in r.prompt)
        for index in range(SKETCHES):
            sketch = writes.get(f"jobs/{job_id}/sketches/{index}", [])
            delivery = first.get((job_id, index))
            if delivery is None or len(sketch) < 2:
                continue
            points = {
                "published": delivery["published"],
                "delivered": delivery["received"],
                "claimed": sketch[0],
                "ended": sketch[-1],
                "acked": delivery["answered"],
            }
            for name, at in points.items():
                stages.setdefault(name, []).append(at - start)
            order = list(points)
            for a, b in itertools.pairwise(order):
                gaps.setdefault(f"{a}->{b}", []).append(points[b] - points[a])
        for at in calls:
            stages.setdefault("model call", []).append(at - start)
        final = writes.get(f"jobs/{job_id}", [])
        if final:
            stages.setdefault("job final", []).append(final[-1] - start)
    calls_at = sorted(stages.get("model call", []))
    per_second: dict[int, int] = {}
    for at in calls_at:
        per_second[int(at)] = per_second.get(int(at), 0) + 1
    return {
        # More deliveries than sketches: redeliveries (a nack, or a lease waited out).
        "deliveries": deliveries,
        "sketches_delivered": len(first),
        "since_start_s": {k: _pct(v) for k, v in stages.items()},
        "between_s": {k: _pct(v) for k, v in gaps.items()},
        "model_calls_per_s": [
            per_second.get(s, 0) for s in range(int(max(calls_at, default=0)) + 1)
        ],
    }


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
        _Trace() as trace,
        DevTopology(
            port=free_port(),
            data_dir=Path(tmp),
            values={
                "GEMINI_API_KEY": "bench-key",
                "GOOGLE_GEMINI_BASE_URL": gemini.url,
                "SKETCHGEN_USER_ACTIVE_JOBS": str(JOBS_PER_USER),
            },
            # The ignore below: a str, always one of the modes main() lists
            firestore_writes=mode,  # type: ignore[arg-type]
        ) as topology,
    ):
        return _burst(topology, gemini, trace)


def run(modes: tuple[str, ...] = ("counted", "contended")) -> dict[str, Any]:
    return {
        "latency_s": LATENCY_S,
        "users": USERS,
        "jobs_per_user": JOBS_PER_USER,
        "sketches": SKETCHES,
        "limit": {"rate_per_s": ContentionModel().rate, "burst": ContentionModel().burst},
        **{mode: _run(mode) for mode in modes},
    }


# The figures before docs/decisions/0051 and 0052 (2026-12-04, same machine and method).
BEFORE = {
    "counted": {"p50_s": 42.42, "p99_s": 46.35, "writes_refused": 0},
    "contended": {"p50_s": 40.53, "p99_s": 45.86, "writes_refused": 47},
    "usage": "10 writes in its life, 2 in 1 s, 5 in 10 s (contended)",
}
CORES = 2


def markdown(data: dict[str, Any]) -> str:
    counted, contended = data["counted"], data["contended"]
    lines = [
        f"{data['users']} users × {data['jobs_per_user']} jobs × {data['sketches']} sketches "
        f"submitted at once on `make dev` (model latency L = {data['latency_s']:.0f} s), every "
        "Firestore write counted per document by the proxy in front of the emulator "
        "(`bench/bench_burst.py`, `python bench/run.py burst`). *counted*: the emulator as is; "
        f"*contended*: writes past {data['limit']['rate_per_s']:.0f}/s (burst "
        f"{data['limit']['burst']:.0f}) per document refused with ABORTED, as Firestore does. "
        "Time to done: the job's final write minus its creation. The machine is shared: its "
        "1-minute load average at the start and end of each burst is in the table.",
        "",
        "| run | jobs done | sketches ok | calls/sketch | p50 | p99 | job doc writes (max) "
        "| refused writes | load avg |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for mode in ("counted", "contended"):
        r = data[mode]
        before = BEFORE[mode]
        lines.append(
            f"| {mode} | {r['done']}/{r['jobs']} | {r['sketches_ok']} | "
            f"{r['calls_per_sketch']} | {before['p50_s']} → {r['p50_s']} s | "
            f"{before['p99_s']} → {r['p99_s']} s | {r['max_job_doc_writes']} | "
            f"{before['writes_refused']} → {r['writes_refused']} | "
            f"{r['load_avg'][0]} → {r['load_avg'][1]} |"
        )
    usage = contended["by_kind"].get("usage/*")
    shards = contended["by_kind"].get("usage/*/shards/*")
    if usage and shards:
        lines += [
            "",
            f"Before → after: the users' usage was one document each ({BEFORE['usage']}); it "
            "is now 4 shard documents per user (docs/decisions/0051): the busiest took "
            f"{max(usage['total_max'], shards['total_max'])} writes in its life, "
            f"{max(usage['max_1s'], shards['max_1s'])} in 1 s and "
            f"{max(usage['max_10s'], shards['max_10s'])} in 10 s.",
        ]
    refused = ", ".join(f"`{k}` {n}" for k, n in contended.get("refused_by_kind", {}).items())
    lines += [
        "",
        "Refused commits in the contended run, by the documents they wrote (each retried): "
        f"{refused or 'none'}. A commit that loses a precondition race is counted by the "
        "contention model as a write attempt too.",
    ]
    lines += ["", "Writes per document, worst document of each kind (contended run):", ""]
    lines += ["| document | writes (life) | max in 1 s | max in 10 s |", "|---|---|---|---|"]
    for kind, c in contended["by_kind"].items():
        lines.append(f"| `{kind}` | {c['total_max']} | {c['max_1s']} | {c['max_10s']} |")
    lines += ["", "Same, counted run (nothing refused: what the design writes):", ""]
    lines += ["| document | writes (life) | max in 1 s | max in 10 s |", "|---|---|---|---|"]
    for kind, c in counted["by_kind"].items():
        lines.append(f"| `{kind}` | {c['total_max']} | {c['max_1s']} | {c['max_10s']} |")

    sketches = data["users"] * data["jobs_per_user"] * data["sketches"]
    lines += [
        "",
        "**Where the time goes** (docs/decisions/0052). CPU seconds of each process during "
        "the burst (user + system, from `/proc`), and per sketch:",
        "",
        "| process | counted | contended | per sketch (contended) |",
        "|---|---|---|---|",
    ]
    for name in sorted(contended["cpu_s"], key=lambda n: -contended["cpu_s"][n]):
        cpu = contended["cpu_s"][name]
        if cpu < 0.05 and counted["cpu_s"].get(name, 0) < 0.05:
            continue
        lines.append(
            f"| {name} | {counted['cpu_s'].get(name, 0)} s | {cpu} s | "
            f"{1000 * cpu / sketches:.0f} ms |"
        )
    for mode in ("counted", "contended"):
        r = data[mode]
        floor = r["cpu_s_total"] / CORES
        lines.append(
            f"| **all, {mode}** | | {r['cpu_s_total']} s in {r['wall_s']} s | "
            f"{1000 * r['cpu_s_total'] / sketches:.0f} ms: ≥ {floor:.1f} s on {CORES} cores |"
        )
    t = contended["timeline"]
    lines += [
        "",
        "A sketch's path (contended run), seconds from the burst's start (p50 / p90 / max):",
        "",
        "| stage | p50 | p90 | max |",
        "|---|---|---|---|",
    ]
    for stage, q in t["since_start_s"].items():
        lines.append(f"| {stage} | {q.get('p50')} | {q.get('p90')} | {q.get('max')} |")
    lines += ["", "| between | p50 | p90 | max |", "|---|---|---|---|"]
    for stage, q in t["between_s"].items():
        lines.append(f"| {stage} | {q.get('p50')} | {q.get('p90')} | {q.get('max')} |")
    calls = ", ".join(str(n) for n in t["model_calls_per_s"])
    fs = contended["firestore_calls"]
    per = ", ".join(f"{m} {n / sketches:.1f}" for m, n in fs.items())
    lines += [
        "",
        f"Deliveries: {t['deliveries']} for {t['sketches_delivered']} sketches. "
        f"Model calls per second from the start: {calls}. Firestore calls per sketch: {per}. "
        f"Connections dropped by a full accept queue during the burst (machine-wide): "
        f"{contended['listen_overflows']}.",
        "",
        "Reading: the calls come in waves of about 32 (the worker's threads: `make dev` runs "
        "one worker instance at THREADS = 32), a delivery waits in the worker's queue for a "
        "thread (*delivered → claimed*), and a wave lasts L plus the CPU its 32 sketches need "
        "(*claimed → ended*). The whole burst needs the CPU seconds above; on this machine's "
        f"{CORES} cores that alone is longer than L + 4 s, before any other work on the "
        "machine: the p99 goal is not reachable here, and the bound is CPU, not Firestore "
        f"(p99 {contended['p99_s']} s contended, {counted['p99_s']} s counted), the push relay "
        "(*published → delivered* is short until the worker's threads are all busy) or the "
        "model's latency. Of the CPU, "
        "the worker and the generate function are the service's own; the Firestore emulator, "
        "the contention proxy, the push relay, the router and the model server stand in for "
        "the cloud's.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    result = run(tuple(sys.argv[1:]) or ("counted", "contended"))
    print(json.dumps(result, indent=2))
