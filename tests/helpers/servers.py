"""The two HTTP stacks, started as real processes on local adapters, for tests and benches that
must see what a server does with the bytes on its socket.

- ``serve``: ``sketchgen serve`` (werkzeug's threaded server), one process, every route.
- ``functions``: the ``generate`` and ``stream`` functions, each under functions-framework as
  deployed (``create_app`` + ``create_server``: gunicorn threads around Flask for generate,
  gunicorn's uvicorn worker around Starlette for stream), as ``make dev`` runs them
  (:mod:`dev.function_host`), without the emulators: SQLite jobs, a blob folder.

Both sign in as the deployment does (Firebase ID tokens), against an Auth emulator address
that is never called: its unsigned tokens (:func:`tests.helpers.auth.bearer`) are accepted
and every other token is parsed and refused as in the cloud.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from dev.processes import free_port
from tests.helpers.waiting import wait_until

__all__ = [
    "PROJECT",
    "STACKS",
    "Server",
    "Stack",
    "StandIn",
    "running_stack",
    "serving_pid",
    "stand_in_process",
    "vm_kib",
]

REPO = Path(__file__).resolve().parents[2]
PROJECT = "demo-edge"
STACKS = ("serve", "functions")

_RUN_FUNCTION = """
import sys
from functions_framework import create_app
from functions_framework._http import create_server
name, target, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
app = create_app(target, f"functions/{name}/main.py", "http")
create_server(app, False).run("127.0.0.1", port)
"""


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes] = field(repr=False)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])


@dataclass
class Stack:
    """``api`` serves jobs and styles; ``events`` serves event streams (the same server on
    ``serve``)."""

    name: str
    api: Server
    events: Server


def _environment(data_dir: Path, extra: dict[str, str] | None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SKETCHGEN_", "FIRESTORE_", "PUBSUB_", "STORAGE_"))
    }
    env.update(
        {
            "PYTHONPATH": f"{REPO / 'lib'}{os.pathsep}{REPO}",
            "SKETCHGEN_AUTH": "firebase",
            "SKETCHGEN_PROJECT": PROJECT,
            "FIREBASE_AUTH_EMULATOR_HOST": "127.0.0.1:9",  # never called: see the docstring
            "SKETCHGEN_OFFLINE": "1",
            "SKETCHGEN_JOB_STORE": f"sqlite:///{data_dir / 'jobs.sqlite3'}",
            "SKETCHGEN_BLOB_URL": f"file://{data_dir / 'blobs'}",
            "SKETCHGEN_LOG_LEVEL": "WARNING",
            **(extra or {}),
        }
    )
    return env


@contextmanager
def _process(args: list[str], env: dict[str, str], port: int) -> Iterator[Server]:
    process = subprocess.Popen(
        args, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if process.poll() is not None:
            stderr = process.stderr.read().decode() if process.stderr else ""
            raise RuntimeError(f"{args} exited: {stderr[-2000:]}")
        try:
            return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(healthy, f"{args} did not answer /healthz", timeout_s=90, interval_s=0.2)
        yield Server(url, process)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def running_stack(name: str, data_dir: Path, env: dict[str, str] | None = None) -> Iterator[Stack]:
    environment = _environment(data_dir, env)
    with ExitStack() as stack:
        if name == "serve":
            port = free_port()
            cli = "from sketchgen.cli import main; raise SystemExit(main())"
            args = [
                sys.executable,
                "-c",
                cli,
                "serve",
                "--port",
                str(port),
                "--data-dir",
                str(data_dir),
            ]
            args.append("--offline")
            server = stack.enter_context(_process(args, environment, port))
            yield Stack(name, server, server)
            return
        events_port, api_port = free_port(), free_port()
        events = stack.enter_context(
            _process(
                [sys.executable, "-c", _RUN_FUNCTION, "stream", "stream", str(events_port)],
                environment,
                events_port,
            )
        )
        environment["SKETCHGEN_EVENTS_BASE_URL"] = events.url
        api = stack.enter_context(
            _process(
                [sys.executable, "-c", _RUN_FUNCTION, "generate", "generate", str(api_port)],
                environment,
                api_port,
            )
        )
        yield Stack(name, api, events)


def serving_pid(server: Server) -> int:
    """The process that answers requests: gunicorn's one worker under functions-framework,
    the process itself under ``sketchgen serve``."""
    pid = server.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return int(children[0]) if children else pid


def vm_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of ``pid``, in KiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in {"VmRSS", "VmHWM"}:
            values[key] = int(rest.split()[0])
    return values


@dataclass
class StandIn:
    """The model stand-in (:mod:`sketchgen.testing.gemini_server`) in a process of its own;
    what it answered is read from its record."""

    url: str
    record: Path

    def behaviours(self) -> list[str]:
        """Each request's behaviour (``image``, ``rate_limit``, ...), in the order decided."""
        lines = self.record.read_text().splitlines() if self.record.exists() else []
        return [json.loads(line)["behaviour"] for line in lines]


@contextmanager
def stand_in_process(data_dir: Path, *options: str) -> Iterator[StandIn]:
    """The stand-in started as ``python -m sketchgen.testing.gemini_server`` with ``options``
    (its command line: ``--latency``, ``--rpm-limit``, ...), stopped after. Where a test's
    process is busy (a topology's contention proxy and push bridges), the stand-in's handler
    threads in it waited for the interpreter behind them, and calls that reached its socket
    spaced were decided bunched: its rate limit then refused calls sent within it."""
    record = data_dir / "stand-in.jsonl"
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "sketchgen.testing.gemini_server", "--port", str(port),
         "--record", str(record), *options],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        ready = process.stdout.readline()  # printed once it listens
        assert ready.startswith("fake Gemini on"), f"the stand-in did not start: {ready!r}"
        yield StandIn(url=f"http://127.0.0.1:{port}", record=record)
    finally:
        process.terminate()
        process.wait(timeout=10)
