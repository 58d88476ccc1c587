"""Load: how many job requests a second the generate function answers on this machine, and
how many Server-Sent Events clients one stream function holds, with the memory each costs.

Both run on the `make dev` topology (emulators included, on the same 2 cores) with delivery
off, so the workers do not compete for the CPU: in the cloud they are separate instances.
"""

from __future__ import annotations

import http.client
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from dev.processes import free_port
from dev.topology import DevTopology
from tests.helpers.auth import bearer

CLIENTS = (4, 16, 32)
DURATION_S = 15.0
SSE_CLIENTS = (100, 400)  # clients on one job, one level after the other
AUTH = {**bearer("bench"), "Content-Type": "application/json"}
BODY = json.dumps({"brief": "playful golf mascot", "style_id": "loose-ink-mascot", "num_images": 3})


def _post_loop(port: int, until: float, latencies: list[float], errors: list[int]) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    while time.perf_counter() < until:
        started = time.perf_counter()
        connection.request("POST", "/v1/jobs", body=BODY, headers=AUTH)
        response = connection.getresponse()
        response.read()
        if response.status == 202:
            latencies.append(time.perf_counter() - started)
        else:
            errors.append(response.status)
    connection.close()


def _generate(port: int, clients: int) -> dict[str, Any]:
    latencies: list[float] = []
    errors: list[int] = []
    until = time.perf_counter() + DURATION_S
    threads = [
        threading.Thread(target=_post_loop, args=(port, until, latencies, errors))
        for _ in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "clients": clients,
        "requests_per_s": round(len(latencies) / DURATION_S, 1),
        "p50_ms": round(cuts[49] * 1000, 1),
        "p99_ms": round(cuts[98] * 1000, 1),
        "errors": len(errors),
    }


def _rss_mib(session: int) -> float:
    """Proportional set size (PSS) of every process in a session (functions-framework's
    gunicorn master and its worker): pages the forked worker shares with the master that
    imported ``main.py`` are counted once, not twice as RSS would."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) == session:  # the session id (ManagedProcess starts a new one)
                for line in (stat.parent / "smaps_rollup").read_text().splitlines():
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total / 1024


def _listen(port: int, job_id: str, opened: threading.Barrier, seen: dict[int, float]) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    connection.request("GET", f"/v1/jobs/{job_id}/events", headers=AUTH)
    response = connection.getresponse()
    response.readline()  # "retry: …": the stream is open
    opened.wait()
    while line := response.readline():
        if line.startswith(b"event: done"):
            seen[threading.get_ident()] = time.perf_counter()
            break
    connection.close()


def _threads(session: int) -> int:
    """Threads of every process in a session."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) == session:
                total += int(fields[17])  # num_threads
        except (OSError, IndexError, ValueError):
            continue
    return total


def _fresh_stream(topology: DevTopology) -> None:
    """A just-started stream function that has served one stream (its Firestore client is
    built), so the figures per client hold only what each client adds."""
    topology.processes["stream"].stop()
    topology.start_function("stream")
    port = topology.ports["stream"]
    job_id = _create(topology)  # once: a job per attempt would pile up active jobs
    deadline = time.monotonic() + 60
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            connection.request("GET", f"/v1/jobs/{job_id}/events", headers=AUTH)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    response = connection.getresponse()
    response.readline()
    response.readline()
    connection.close()
    time.sleep(1.0)


def _stream(topology: DevTopology, clients: int) -> dict[str, Any]:
    _fresh_stream(topology)
    port, session = topology.ports["stream"], topology.processes["stream"].pid
    assert session is not None
    job_id = _create(topology)
    idle, idle_threads = _rss_mib(session), _threads(session)
    opened = threading.Barrier(clients + 1)
    seen: dict[int, float] = {}
    threads = [
        threading.Thread(target=_listen, args=(port, job_id, opened, seen), daemon=True)
        for _ in range(clients)
    ]
    for thread in threads:
        thread.start()
    opened.wait(timeout=180)
    time.sleep(2.0)  # every listener attached
    held, held_threads = _rss_mib(session), _threads(session)
    cancelled = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", topology.ports["generate"], timeout=30)
    connection.request("POST", f"/v1/jobs/{job_id}/cancel", headers=AUTH)
    connection.getresponse().read()
    for thread in threads:
        thread.join(timeout=60)
    fan_out = sorted(at - cancelled for at in seen.values())
    return {
        "sse_clients": clients,
        "clients_got_done": len(seen),
        "rss_idle_mib": round(idle, 1),  # PSS, see _rss_mib
        "rss_held_mib": round(held, 1),
        "kib_per_client": round((held - idle) * 1024 / clients, 1),
        "threads_per_client": round((held_threads - idle_threads) / clients, 2),
        "fan_out_p50_ms": round(fan_out[len(fan_out) // 2] * 1000, 1) if fan_out else None,
        "fan_out_max_ms": round(fan_out[-1] * 1000, 1) if fan_out else None,
    }


def _create(topology: DevTopology) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", topology.ports["generate"], timeout=30)
    connection.request("POST", "/v1/jobs", body=BODY, headers=AUTH)
    answer = connection.getresponse()
    body = answer.read()
    if answer.status != 202:
        raise RuntimeError(f"POST /v1/jobs answered {answer.status}: {body[:300]!r}")
    return str(json.loads(body)["job_id"])


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, DevTopology(
        port=free_port(), data_dir=Path(tmp), deliver=False,
        threads=max(SSE_CLIENTS) + 28,
    ) as topology:  # fmt: skip
        port = topology.ports["generate"]
        _generate(port, 4)  # warm-up: imports, clients, first Firestore writes
        generate = [_generate(port, clients) for clients in CLIENTS]
        stream = [_stream(topology, clients) for clients in SSE_CLIENTS]
    return {"duration_s": DURATION_S, "generate": generate, "stream": stream}


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "`make dev` topology, delivery off (sketches stay queued), emulators on the same cores. "
        f"**Generate**: N clients each POST a 3-sketch job in a loop for "
        f"{results['duration_s']:.0f} s, straight to the generate function (one process, "
        "gunicorn threads). A request authenticates, validates, compiles the prompt, retrieves "
        "references, writes the job document and publishes 3 Pub/Sub messages.",
        "",
        "| clients | requests/s | p50 | p99 | errors |",
        "|---|---|---|---|---|",
    ]
    for row in results["generate"]:
        lines.append(
            f"| {row['clients']} | {row['requests_per_s']} | {row['p50_ms']:.0f} ms | "
            f"{row['p99_ms']:.0f} ms | {row['errors']} |"
        )
    streams = results["stream"]
    if isinstance(streams, dict):  # results saved before the levels
        streams = [streams]
    lines += [
        "",
        "**Stream**: N SSE clients on one job, held open by one stream function process "
        "(gunicorn threads = the largest N + 28); then the job is cancelled and every client "
        "waits for its `done` event (fan-out: after the cancel request). Memory and threads: "
        "the function's processes (PSS), holding the clients minus idle (a fresh process that "
        "served one stream), per client. Every client of a job shares one Firestore listener "
        "(`sketchgen.api.feed`); a client costs its "
        "gunicorn thread.",
        "",
        "| clients | got `done` | fan-out p50 / max | memory idle → holding | per client |",
        "|---|---|---|---|---|",
    ]
    for stream in streams:
        per_thread = stream.get("threads_per_client")
        threads = f", {per_thread} threads" if per_thread is not None else ""
        lines.append(
            f"| {stream['sse_clients']} | {stream['clients_got_done']} "
            f"| {stream['fan_out_p50_ms']:.0f} / {stream['fan_out_max_ms']:.0f} ms "
            f"| {stream['rss_idle_mib']:.0f} → {stream['rss_held_mib']:.0f} MiB "
            f"| **{stream['kib_per_client']:.0f} KiB**{threads} |"
        )
    baseline = results.get("baseline_stream")
    if baseline:
        lines += [
            "",
            f"Before the shared listener (commit {baseline['commit']}: {baseline['note']}):",
            "",
            "| clients | got `done` | fan-out p50 / max | memory idle → holding | per client |",
            "|---|---|---|---|---|",
        ]
        for stream in baseline["levels"]:
            lines.append(
                f"| {stream['sse_clients']} | {stream['clients_got_done']} "
                f"| {stream['fan_out_p50_ms']:.0f} / {stream['fan_out_max_ms']:.0f} ms "
                f"| {stream['rss_idle_mib']:.0f} → {stream['rss_held_mib']:.0f} MiB "
                f"| **{stream['kib_per_client']:.0f} KiB**, {stream['threads_per_client']} "
                "threads |"
            )
    lines += [
        "",
        "One client per job is the old cost again (one listener each): 400 such clients are "
        "about 400 × 320 KiB ≈ 125 MiB over idle. These figures are the stream function on "
        "gunicorn threads; it is now an async function, measured under **Streams** below "
        "(docs/decisions/0014-async-stream-function.md).",
    ]
    return "\n".join(lines)
