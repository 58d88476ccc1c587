"""Streams: 1,000 Server-Sent Events clients on one stream function instance (the async
function on functions-framework's ASGI stack), the memory each costs, and how fast a cancel
reaches every one of them as its `done` event.

On the `make dev` topology (emulators on the same cores) with delivery off, so the job stays
queued until it is cancelled. The clients are asyncio tasks on httpx in this process, one
connection each; the function runs as deployed (functions-framework, gunicorn + uvicorn
worker, one process), reached on its own port.
"""

from __future__ import annotations

import asyncio
import http.client
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.bench_load import AUTH, _create, _fresh_stream, _rss_mib, _threads
from dev.processes import free_port
from dev.topology import DevTopology

LEVELS = (250, 1000)  # clients on one job, one level after the other (a fresh process each)
SETTLE_S = 3.0
# The same run with httpx clients (before this file's raw-socket client), 2026-12-03, load ~16:
# fan-out from the cancel, and the CPU each side spent on it.
HTTPX_CLIENT = [
    {"clients": 250, "p50_ms": 587, "p99_ms": 742, "server_cpu_ms": 120, "client_cpu_ms": 110},
    {"clients": 1000, "p50_ms": 1624, "p99_ms": 2307, "server_cpu_ms": 550, "client_cpu_ms": 913},
]  # after the last client is connected: every stream subscribed and idle


def streams_allowed(clients: int) -> dict[str, str]:
    """The topology's values for one user (the benchmark's) to hold ``clients`` streams on
    one instance: make dev allows 5 a user (SKETCHGEN_USER_STREAMS), as deployed."""
    return {"SKETCHGEN_USER_STREAMS": str(clients + 10)}


def _raise_open_files(wanted: int) -> int:
    """Each client is a socket here and one in the function (which inherits this limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM (KiB) of one process."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in {"VmRSS", "VmHWM"}:
            found[name] = int(value.split()[0])
    return found


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _worker_pid(session: int) -> int:
    """The process serving the clients: gunicorn's (uvicorn) worker, the session's child."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) == session and int(stat.parent.name) != session:
                children.append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    return max(children) if children else session


async def _listen(
    port: int,
    path: str,
    connected: list[float],
    done: list[float],
    failed: list[str],
) -> None:
    """One client: an HTTP/1.1 GET on asyncio's streams, read until `event: done`.

    Not httpx: its per-chunk cost (h11 in pure Python, ~0.9 ms a client here) made the
    benchmark's own process the bottleneck of the fan-out it measures (the first run, kept in
    the results as ``httpx``)."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 16)
    except OSError as error:
        failed.append(type(error).__name__)
        return
    try:
        headers = "".join(f"{k}: {v}\r\n" for k, v in AUTH.items() if k != "Content-Type")
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n".encode())
        status = await reader.readline()
        if b" 200 " not in status:
            failed.append(status.decode(errors="replace").strip())
            return
        connected.append(time.perf_counter())
        tail = b""
        while chunk := await reader.read(1 << 16):
            if b"event: done" in tail + chunk:
                done.append(time.perf_counter())
                return
            tail = chunk[-16:]
        failed.append("closed before done")
    except OSError as error:
        failed.append(type(error).__name__)
    finally:
        writer.close()


def _cancel(topology: DevTopology, job_id: str) -> tuple[int, float]:
    connection = http.client.HTTPConnection("127.0.0.1", topology.ports["generate"], timeout=30)
    connection.request("POST", f"/v1/jobs/{job_id}/cancel", headers=AUTH)
    status = connection.getresponse().status
    return status, time.perf_counter()


async def _hold(topology: DevTopology, clients: int) -> dict[str, Any]:
    port, session = topology.ports["stream"], topology.processes["stream"].pid
    assert session is not None
    worker = _worker_pid(session)
    job_id = _create(topology)
    idle_pss, idle_threads, idle = _rss_mib(session), _threads(session), _status(worker)
    path = f"/v1/jobs/{job_id}/events"
    connected: list[float] = []
    done: list[float] = []
    failed: list[str] = []
    started = time.perf_counter()
    tasks = [
        asyncio.create_task(_listen(port, path, connected, done, failed)) for _ in range(clients)
    ]
    while len(connected) + len(failed) < clients and time.perf_counter() - started < 180:
        await asyncio.sleep(0.1)
    connect_s = time.perf_counter() - started
    await asyncio.sleep(SETTLE_S)
    held_pss, held_threads, held = _rss_mib(session), _threads(session), _status(worker)
    server_cpu, client_cpu = _cpu_s(worker), time.process_time()
    cancelled = time.perf_counter()
    # On a thread: the clients' loop keeps reading while the cancel is answered.
    status, answered = await asyncio.to_thread(_cancel, topology, job_id)
    await asyncio.wait(tasks, timeout=60)
    server_cpu, client_cpu = _cpu_s(worker) - server_cpu, time.process_time() - client_cpu
    after = _status(worker)
    load = os.getloadavg()[0]
    fan_out = sorted(at - cancelled for at in done)
    cuts = statistics.quantiles(fan_out, n=100) if len(fan_out) > 1 else [0.0] * 99
    return {
        "clients": clients,
        "connected": len(connected),
        "failed": len(failed),
        "connect_s": round(connect_s, 1),
        "cancel_status": status,
        "got_done": len(done),
        "pss_idle_mib": round(idle_pss, 1),
        "pss_held_mib": round(held_pss, 1),
        "kib_per_client_pss": round((held_pss - idle_pss) * 1024 / clients, 1),
        "rss_idle_kib": idle["VmRSS"],
        "rss_held_kib": held["VmRSS"],
        "hwm_kib": after["VmHWM"],
        "kib_per_client_rss": round((held["VmRSS"] - idle["VmRSS"]) / clients, 1),
        "kib_per_client_hwm": round((after["VmHWM"] - idle["VmHWM"]) / clients, 1),
        "threads_idle": idle_threads,
        "threads_held": held_threads,
        "fan_out_p50_ms": round(cuts[49] * 1000, 1) if fan_out else None,
        "fan_out_p99_ms": round(cuts[98] * 1000, 1) if fan_out else None,
        "fan_out_max_ms": round(fan_out[-1] * 1000, 1) if fan_out else None,
        "fan_out_min_ms": round(fan_out[0] * 1000, 1) if fan_out else None,
        "cancel_answered_ms": round((answered - cancelled) * 1000, 1),
        # CPU used from the cancel until the last `done`: the function's worker, and this
        # process (the clients), each on at most one core.
        "server_cpu_ms": round(server_cpu * 1000),
        "client_cpu_ms": round(client_cpu * 1000),
        "load_1min": round(load, 1),  # the machine is shared: how busy it was
    }


def run() -> dict[str, Any]:
    open_files = _raise_open_files(4 * max(LEVELS) + 1024)
    levels = []
    with tempfile.TemporaryDirectory() as tmp, DevTopology(
        port=free_port(), data_dir=Path(tmp), deliver=False,
        values=streams_allowed(max(LEVELS)),
    ) as topology:  # fmt: skip
        for clients in LEVELS:
            _fresh_stream(topology)
            levels.append(asyncio.run(_hold(topology, clients)))
    return {
        "open_files": open_files,
        "settle_s": SETTLE_S,
        "levels": levels,
        "httpx_client": HTTPX_CLIENT,
    }


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "`make dev` topology, delivery off, emulators on the same cores. N clients (asyncio "
        "tasks in the benchmark's process, one connection each: an HTTP/1.1 GET on asyncio "
        "streams, read until `event: done`) open the event stream of one queued job on one "
        "stream function process: the async function on functions-framework's ASGI stack "
        "(gunicorn with one uvicorn worker, as deployed), started fresh for each level and "
        "having served one stream (its Firestore client built). "
        f"{results['settle_s']:.0f} s after the last client connected the memory is read, "
        "then the job is cancelled through the generate function and every client waits for "
        "its `done` event (fan-out: from sending the cancel; the cancel request itself is "
        "answered after the job is final). Memory per client: the worker's VmRSS holding "
        "the clients minus idle, and its peak (VmHWM) after the fan-out minus idle, over N; "
        "PSS is the function's processes together (it also counts pages the worker stops "
        "sharing with gunicorn's master). CPU: what the function's worker and the clients' "
        "process spent from the cancel to the last `done`. Open files raised to "
        f"{results['open_files']} (setrlimit) in the benchmark and the function it starts. "
        "The machine is shared: the load column is its 1-minute load average (2 cores).",
        "",
        "| clients | connected (s) | got `done` | cancel answered | fan-out min / p50 / p99 / "
        "max | per client RSS / HWM / PSS | worker RSS idle → holding | threads | CPU "
        "server / clients | load |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    rows = [*results["levels"], *results.get("busier_runs", [])]
    for row in rows:
        lines.append(
            f"| {row['clients']} | {row['connected']} ({row['connect_s']} s) "
            f"| {row['got_done']} | {row.get('cancel_answered_ms', 0):.0f} ms "
            f"| {row.get('fan_out_min_ms', 0):.0f} / {row['fan_out_p50_ms']:.0f} / "
            f"**{row['fan_out_p99_ms']:.0f}** / {row['fan_out_max_ms']:.0f} ms "
            f"| **{row['kib_per_client_rss']:.0f}** / {row['kib_per_client_hwm']:.0f} / "
            f"{row['kib_per_client_pss']:.0f} KiB "
            f"| {row['rss_idle_kib'] / 1024:.0f} → {row['rss_held_kib'] / 1024:.0f} MiB "
            f"| {row['threads_idle']} → {row['threads_held']} "
            f"| {row.get('server_cpu_ms', '?')} / {row.get('client_cpu_ms', '?')} ms "
            f"| {row.get('load_1min', '?')} |"
        )
    if results.get("busier_runs"):
        lines += [
            "",
            "The rows after the first two are earlier runs of the same code while the machine "
            "was busier (other engineers' test suites and emulators): the fan-out is CPU on "
            "shared cores, the memory does not move.",
        ]
    httpx_rows = results.get("httpx_client") or []
    if httpx_rows:
        lines += [
            "",
            "With httpx as the client (same method and machine, load ~16): the clients' "
            "process spent more CPU on the fan-out than the function did, and was what the "
            "fan-out measured:",
            "",
            "| clients | fan-out p50 / p99 | CPU server / clients |",
            "|---|---|---|",
        ]
        for row in httpx_rows:
            lines.append(
                f"| {row['clients']} | {row['p50_ms']} / {row['p99_ms']} ms "
                f"| {row['server_cpu_ms']} / {row['client_cpu_ms']} ms |"
            )
    lines += [
        "",
        "A client is a task and an `asyncio.Event` on its job's one Firestore listener "
        "(`sketchgen.api.feed`, fed from the listener's thread with one "
        "`loop.call_soon_threadsafe` per snapshot), no thread: the worker's threads do not "
        "grow with the clients. Targets: ≤ 64 KiB per client, cancel → `done` p99 ≤ 1 s. "
        "Terraform sizes the stream function at concurrency 1000 (Cloud Run's maximum) and "
        "1 GiB from this table (docs/decisions/0014-async-stream-function.md).",
    ]
    return "\n".join(lines)
