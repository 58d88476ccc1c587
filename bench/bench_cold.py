"""Cold starts: what a just-started function instance, and a library's first job, cost.

Service, on the `make dev` topology (model latency L): each round stops the three function
processes and starts them one at a time, timing process start → healthy (its health check
answers 200, as `make dev` waits for it: functions-framework has imported ``main.py``, gunicorn
is listening and its worker has connected its clients). Then one job on the just-started
instances (cold)
and one right after (warm), each timed as: POST → 202 (generate's first request), GET events
→ first byte (stream's first request), POST → the model's first call (the worker's first push,
Pub/Sub push included) and POST → ``done``.

Library, in a fresh interpreter per round: ``ImageGenerator.generate()`` of 6 sketches at
latency L, the first call and the second, with and without ``warm_up()`` started in a thread
when the generator is made (what the CLI does while it plans).
"""

from __future__ import annotations

import json
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from bench.common import median, run_python
from dev.processes import free_port
from dev.topology import DevTopology
from sketchgen.testing.gemini_server import FakeGeminiServer
from tests.helpers.auth import bearer

LATENCY_S = 2.0
SKETCHES = 6
ROUNDS = 3
FUNCTIONS = ("generate", "stream", "sketch_worker")
AUTH = bearer("bench-cold")


def _wait_healthy(port: int, path: str, timeout_s: float = 60.0) -> None:
    """Until ``path`` answers 200 (``/healthz``; the worker's health check is a GET of ``/``)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
                if answer.status == 200:
                    return
        except (OSError, urllib.error.HTTPError):
            pass
        time.sleep(0.005)
    raise RuntimeError(f"{port} did not report healthy")


def _job(topology: DevTopology, gemini: FakeGeminiServer, brief: str) -> dict[str, float]:
    body = json.dumps(
        {"brief": brief, "style_id": "loose-ink-mascot", "num_images": SKETCHES}
    ).encode()
    post = urllib.request.Request(
        f"{topology.url}/v1/jobs",
        data=body,
        method="POST",
        headers={**AUTH, "Content-Type": "application/json"},
    )
    start = time.monotonic()
    with urllib.request.urlopen(post, timeout=60) as response:
        payload = json.loads(response.read())
    accepted = time.monotonic() - start
    opened = time.monotonic()
    first_byte = done = None
    with urllib.request.urlopen(
        urllib.request.Request(payload["events_url"], headers=AUTH), timeout=120
    ) as stream:
        for raw in stream:
            first_byte = first_byte or time.monotonic() - opened
            if raw.decode().strip() == "event: done":
                done = time.monotonic() - start
                break
    calls = [r.at for r in gemini.requests if brief in r.prompt]
    assert done is not None and first_byte is not None and calls, "the job did not run"
    return {
        "accepted_ms": accepted * 1000,
        "stream_first_byte_ms": first_byte * 1000,
        "first_model_call_s": min(calls) - start,
        "done_s": done,
    }


def _service() -> dict[str, Any]:
    with FakeGeminiServer(latency_s=LATENCY_S) as gemini, tempfile.TemporaryDirectory() as tmp:
        topology = DevTopology(
            port=free_port(),
            data_dir=Path(tmp),
            values={"GEMINI_API_KEY": "bench-key", "GOOGLE_GEMINI_BASE_URL": gemini.url},
        )
        topology.start()
        rounds = []
        try:
            # The emulators' own first requests are slow (a JVM warming up); in the cloud they
            # are always warm, so one job runs before the rounds and is not counted.
            _job(topology, gemini, "priming golf mascot")
            for n in range(ROUNDS):
                ready = {}
                for name in FUNCTIONS:
                    topology.processes[name].stop()
                for name in FUNCTIONS:
                    start = time.monotonic()
                    topology.start_function(name)
                    health = "/" if name == "sketch_worker" else "/healthz"
                    _wait_healthy(topology.ports[name], health)
                    ready[name] = (time.monotonic() - start) * 1000
                cold = _job(topology, gemini, f"cold golf mascot {n}")
                warm = _job(topology, gemini, f"warm golf mascot {n}")
                rounds.append({"ready_ms": ready, "cold": cold, "warm": warm})
        finally:
            topology.stop()
    return {"rounds": rounds}


_LIBRARY = """
import json, sys, tempfile, threading, time
from pathlib import Path
start = time.monotonic()
from sketchgen.generate import GenerationConfig, ImageGenerator, NanoBananaAdapter
from sketchgen.prompt import PromptCompiler
from sketchgen.references import ImageRetriever
from sketchgen.styles import StyleRegistry
generator = ImageGenerator(NanoBananaAdapter(api_key="bench", base_url=sys.argv[1]))
warming = None
if sys.argv[2] == "warm":
    warming = threading.Thread(target=generator.warm_up, daemon=True)
    warming.start()
out = Path(tempfile.mkdtemp())
def job():
    style = StyleRegistry().get_style("loose-ink-mascot")
    spec = PromptCompiler().compile("playful golf mascot", style)
    return dict(prompt_spec=spec, retrieval_result=ImageRetriever().retrieve(spec, style, top_k=3),
                style=style, config=GenerationConfig(num_images=%d, seed=3, output_dir=out))
first_job = job()
planned = time.monotonic() - start
waited = time.monotonic()
if warming is not None:
    warming.join()
waited = time.monotonic() - waited
times = []
for kwargs in (first_job, job()):
    t = time.monotonic()
    generator.generate(**kwargs)
    times.append(time.monotonic() - t)
print(json.dumps({"import_and_plan_s": planned, "warm_up_wait_s": waited,
                  "first_s": times[0], "second_s": times[1]}))
"""


def _library() -> dict[str, Any]:
    out: dict[str, Any] = {"cold": [], "warm": []}
    with FakeGeminiServer(latency_s=LATENCY_S) as gemini:
        for _ in range(ROUNDS):
            for mode in ("cold", "warm"):
                code = _LIBRARY % SKETCHES
                text = run_python(f"import sys; sys.argv[1:] = {[gemini.url, mode]!r}\n{code}")
                out[mode].append(json.loads(text.strip().splitlines()[-1]))
    return out


def run() -> dict[str, Any]:
    return {
        "latency_s": LATENCY_S,
        "sketches": SKETCHES,
        "rounds": ROUNDS,
        "service": _service(),
        "library": _library(),
    }


def _med(rows: list[dict[str, Any]], *path: str) -> float:
    values = []
    for row in rows:
        value: Any = row
        for key in path:
            value = value[key]
        values.append(float(value))
    return median(values)


def markdown(results: dict[str, Any]) -> str:
    latency, rounds = results["latency_s"], results["service"]["rounds"]
    lib = results["library"]
    n = results["rounds"]
    lines = [
        f"`make dev` topology on this machine (2 cores shared with other work: figures are "
        f"noisy), model latency L = {latency} s, {results['sketches']} sketches; median of "
        f"{n} rounds, each round restarting the three function processes.",
        "",
        "| function | process start → healthy | first request (cold) | same, warm |",
        "|---|---|---|---|",
        f"| generate | {_med(rounds, 'ready_ms', 'generate'):.0f} ms "
        f"| POST → 202 {_med(rounds, 'cold', 'accepted_ms'):.0f} ms "
        f"| {_med(rounds, 'warm', 'accepted_ms'):.0f} ms |",
        f"| stream | {_med(rounds, 'ready_ms', 'stream'):.0f} ms "
        f"| GET events → first byte {_med(rounds, 'cold', 'stream_first_byte_ms'):.0f} ms "
        f"| {_med(rounds, 'warm', 'stream_first_byte_ms'):.0f} ms |",
        f"| sketch_worker | {_med(rounds, 'ready_ms', 'sketch_worker'):.0f} ms "
        f"| POST → first model call {_med(rounds, 'cold', 'first_model_call_s'):.2f} s "
        f"| {_med(rounds, 'warm', 'first_model_call_s'):.2f} s |",
        "",
        "| measure | cold | warm | target |",
        "|---|---|---|---|",
        f"| POST → 202 | {_med(rounds, 'cold', 'accepted_ms'):.0f} ms "
        f"| {_med(rounds, 'warm', 'accepted_ms'):.0f} ms | cold ≤ 250 ms |",
        f"| POST → `done` | {_med(rounds, 'cold', 'done_s'):.2f} s "
        f"| {_med(rounds, 'warm', 'done_s'):.2f} s | cold ≤ warm + 0.5 s |",
        "",
        f"Library, fresh interpreter per round, `generate()` of {results['sketches']} sketches "
        f"at L = {latency} s (median of {n}):",
        "",
        "| | first `generate()` | second | import + plan | then waiting for the warm-up |",
        "|---|---|---|---|---|",
        f"| straight after planning (the generator warms up from when it is made) "
        f"| {_med(lib['cold'], 'first_s'):.2f} s "
        f"| {_med(lib['cold'], 'second_s'):.2f} s "
        f"| {_med(lib['cold'], 'import_and_plan_s'):.2f} s | – |",
        f"| a second `warm_up()` thread, joined before the call "
        f"| {_med(lib['warm'], 'first_s'):.2f} s "
        f"| {_med(lib['warm'], 'second_s'):.2f} s "
        f"| {_med(lib['warm'], 'import_and_plan_s'):.2f} s "
        f"| {_med(lib['warm'], 'warm_up_wait_s'):.2f} s |",
        "",
        f"Target: first `generate()` ≤ L + 0.5 s = {latency + 0.5:.1f} s. The warm-up moves "
        "the SDK import and client out of the first call; the CLI overlaps it with planning, "
        "so from the command's start it saves only as much as planning takes.",
    ]
    baseline = results.get("baseline")
    if baseline:
        before = baseline["rounds"]
        lines += [
            "",
            f"Before this (commit {baseline['commit']}, {baseline['note']}; median of "
            f"{len(before)}): POST → 202 cold {_med(before, 'cold', 'accepted_ms'):.0f} ms, "
            f"GET events → first byte cold {_med(before, 'cold', 'stream_first_byte_ms'):.0f} ms, "
            f"POST → first model call cold {_med(before, 'cold', 'first_model_call_s'):.2f} s, "
            f"POST → `done` cold {_med(before, 'cold', 'done_s'):.2f} s "
            f"(warm {_med(before, 'warm', 'done_s'):.2f} s); process start → healthy "
            "(then: listening) "
            f"{_med(before, 'ready_ms', 'generate'):.0f} / {_med(before, 'ready_ms', 'stream'):.0f}"
            f" / {_med(before, 'ready_ms', 'sketch_worker'):.0f} ms (generate / stream / worker).",
        ]
    return "\n".join(lines)
