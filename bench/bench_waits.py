"""Where a user waits (issue 28): the first request, the first call, the fan-out, the finisher.

Each row is measured the way issue 28's table says, by the benchmark that owns it:

- first ``POST /v1/jobs`` → 202 after the functions report healthy, and the first job's
  ``done`` against a warm job's: :mod:`bench.bench_cold` (``make dev``, L = 2 s; each round
  restarts the three functions and waits for their health checks, no warm-up request);
- the library's first ``generate()`` in a fresh interpreter (sync, 6 sketches, L = 2 s; timed
  from the call, after import and planning): :mod:`bench.bench_cold`;
- the CLI's wall time, interpreter included (``sketchgen generate``, 6 sketches, L = 2 s),
  in a fresh process each run;
- cancel → ``done`` p99 at 1,000 event-stream clients of one job: :mod:`bench.bench_streams`;
- the finisher against a plain decode + grayscale re-encode: :mod:`bench.bench_finish`.

``before`` is the same run on the commit named in the results, on the same machine in the
same session (its own checkout, this module copied in); the suite's time is the one run named.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, median

CLI_RUNS = 5
STREAM_LEVELS = (1000, 1000, 1000)


def _cli(runs: int = CLI_RUNS) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds (the command's process, user + system) of each run."""
    import resource

    from sketchgen.testing.gemini_server import FakeGeminiServer

    walls, cpus = [], []
    with FakeGeminiServer(latency_s=2.0) as gemini, tempfile.TemporaryDirectory() as out:
        env = {
            **os.environ,
            "PYTHONPATH": f"{ROOT / 'lib'}:{ROOT}",
            "GEMINI_API_KEY": "bench-key",
            "GOOGLE_GEMINI_BASE_URL": gemini.url,
        }
        command = [
            str(Path(sys.executable).with_name("sketchgen")), "generate", "playful golf mascot",
            "-n", "6", "--seed", "3", "--output-dir", out,
        ]  # fmt: skip
        for _ in range(runs + 1):  # the first warms the OS's file cache and is not counted
            used = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.monotonic()
            subprocess.run(command, env=env, check=True, capture_output=True)
            walls.append(time.monotonic() - start)
            now = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(now.ru_utime + now.ru_stime - used.ru_utime - used.ru_stime)
    return walls[1:], cpus[1:]


def _streams() -> list[dict[str, Any]]:
    from bench import bench_streams
    from dev.processes import free_port
    from dev.topology import DevTopology

    bench_streams._raise_open_files(4 * max(STREAM_LEVELS) + 1024)
    levels = []
    with tempfile.TemporaryDirectory() as tmp, DevTopology(
        port=free_port(), data_dir=Path(tmp), deliver=False,
        values=bench_streams.streams_allowed(max(STREAM_LEVELS)),
    ) as topology:  # fmt: skip
        for clients in STREAM_LEVELS:
            bench_streams._fresh_stream(topology)
            levels.append(asyncio.run(bench_streams._hold(topology, clients)))
    return levels


def measure() -> dict[str, Any]:
    from bench import bench_cold, bench_finish

    bench_finish.SIZES = {"1K": 1024, "4K": 4096}
    walls, cpus = _cli()
    return {
        "service": bench_cold._service(),
        "library": bench_cold._library(),
        "cli_wall_s": walls,
        "cli_cpu_s": median(cpus),
        "streams": _streams(),
        "finish": bench_finish.run()["sizes"],
    }


def run() -> dict[str, Any]:
    """The current tree's figures; ``before``, ``suite`` and the re-measured rows and their
    account (``rows``, ``rerun``) are carried over from the last results (they are measured
    once, as the module docstring says)."""
    import json

    from bench.common import RESULTS

    previous = RESULTS / "waits.json"
    kept = json.loads(previous.read_text()) if previous.exists() else {}
    carried = ("before", "suite", "rows", "rerun")
    return {"after": measure(), **{k: kept[k] for k in carried if k in kept}}


def _rows(figures: dict[str, Any]) -> dict[str, str]:
    """The table's cells for one side; a row without figures says why (``missing``)."""
    rows = dict(figures.get("missing", {}))
    if "service" in figures:
        rounds = figures["service"]["rounds"]

        def cold(key: str) -> float:
            return median([r["cold"][key] for r in rounds])

        def warm(key: str) -> float:
            return median([r["warm"][key] for r in rounds])

        rows["post"] = f"{cold('accepted_ms'):.0f} ms (warm {warm('accepted_ms'):.0f} ms)"
        rows["done"] = (
            f"{cold('done_s'):.2f} s vs {warm('done_s'):.2f} s "
            f"({cold('done_s') - warm('done_s'):+.2f} s)"
        )
    if "library" in figures:
        lib = figures["library"]["cold"]
        rows["library"] = (
            f"{median([r['first_s'] for r in lib]):.2f} s "
            f"(second {median([r['second_s'] for r in lib]):.2f} s)"
        )
    if "cli_wall_s" in figures:
        rows["cli"] = f"{median(figures['cli_wall_s']):.2f} s" + (
            f" (CPU {figures['cli_cpu_s']:.2f} s)" if "cli_cpu_s" in figures else ""
        )
    if "streams" in figures:
        streams = figures["streams"]
        p99 = [s["fan_out_p99_ms"] for s in streams]
        cpu = median([s["server_cpu_ms"] for s in streams])
        rows["streams"] = (
            f"{median(p99):.0f} ms, function CPU {cpu:.0f} ms ({len(p99)} runs: "
            f"{', '.join(str(round(v)) for v in p99)} ms; "
            f"load {', '.join(str(s['load_1min']) for s in streams)})"
        )
    if "finish" in figures:
        finish = figures["finish"]
        rows["finish"] = f"{finish['1K']['ratio']:.2f}× at 1K, {finish['4K']['ratio']:.2f}× at 4K"
    return rows


GOALS = {
    "post": ("first `POST /v1/jobs` → 202 after the functions report healthy", "≤ 250 ms"),
    "done": ("first job `done` vs a warm job", "≤ warm + 0.5 s"),
    "library": ("library: first `generate()` in a process (sync, 6 sketches)", "≤ L + 0.5 s"),
    "cli": ("CLI `sketchgen generate` wall, interpreter included", "≤ L + 0.7 s"),
    "streams": ("cancel → `done` at 1,000 event-stream clients of one job, p99", "≤ 0.5 s"),
    "finish": ("finisher vs a plain decode + grayscale re-encode", "≤ 1.0×"),
}


def markdown(results: dict[str, Any]) -> str:
    after = _rows(results["after"])
    before = _rows(results["before"]) if "before" in results else {}
    # Rows measured again later by another method (``rerun``, below) replace these cells.
    for key, cells in results.get("rows", {}).items():
        before[key], after[key] = cells["before"], cells["after"]
    lines = [
        "Model stand-in latency L = 2.0 s. **The machine was shared with up to 8 engineers' "
        "test suites, topologies and benchmarks while this ran (1-minute load average 10–50 on "
        "2 cores)**: every figure here is slower than on a quiet machine, and before and "
        "after were taken minutes apart in the same session, so compare them with each other, "
        "not with the other sections. Medians of 3 rounds (service, library, streams), 5 runs "
        "(CLI), 9 at 1K and 5 at 4K (finisher). Methods: `bench/bench_waits.py` (it names the "
        f"benchmark behind each row). Before: commit {results.get('before_commit', '?')}.",
        "",
        "| measure | goal | before | after |",
        "|---|---|---|---|",
    ]
    for key, (what, goal) in GOALS.items():
        lines.append(f"| {what} | {goal} | {before.get(key, '–')} | {after.get(key, '–')} |")
    suite = results.get("suite")
    if suite:
        lines += [
            f"| `make test` (the whole suite) | ≤ 5 min, no test dropped "
            f"| {suite['before']} | {suite['after']} |",
            "",
            suite["note"],
        ]
    for key in ("notes", "rerun"):
        if results.get(key):
            lines += ["", results[key]]
    return "\n".join(lines)
