"""``make dev``: the cloud topology on one machine, with real parts.

Firestore and Pub/Sub emulators (Google Cloud CLI), a Cloud Storage emulator (PyPI), the
three functions under functions-framework, the worker's subscription (retry policy and
dead-letter topic) delivered to it as push (by `PushBridge`: the emulator pushes only two at a
time), and one public origin routing the same paths as
in the cloud. Everything it starts, it stops.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from sketchgen.testing.processes import ManagedProcess, free_port, wait_for_http
from sketchgen.testing.push_bridge import PushBridge
from sketchgen.testing.router import Router, serve_router

__all__ = ["DevTopology", "main"]

REPO = Path(__file__).resolve().parents[3]
FUNCTIONS = {"generate": "generate", "sketch_worker": "sketch_worker", "stream": "stream"}


@dataclass
class DevTopology:
    port: int = 8080
    project: str = "sketchgen-dev"
    bucket: str = "sketchgen-dev"
    data_dir: Path = field(default_factory=lambda: REPO / "generated_outputs" / "dev")
    functions_dir: Path = REPO / "functions"
    extra_env: dict[str, str] = field(default_factory=dict)
    lease_s: float = 300.0
    ack_deadline_s: int = 600  # a push that dies without answering is redelivered after this
    workers: int = 1  # sketch_worker processes, like instances sharing one subscription
    push_concurrency: int = 64  # deliveries in flight (Cloud Run: instances x concurrency)
    deliver: bool = True  # False: sketches stay queued (benchmarks of the endpoints alone)
    processes: dict[str, ManagedProcess] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def topic(self) -> str:
        return f"projects/{self.project}/topics/sketches"

    @property
    def dead_letter_topic(self) -> str:
        return f"projects/{self.project}/topics/sketches-dead-letter"

    @property
    def subscription(self) -> str:
        return f"projects/{self.project}/subscriptions/sketch-worker"

    @property
    def functions(self) -> dict[str, str]:
        """Process name → the function it runs: the worker may run as several processes."""
        extra = {f"sketch_worker_{n}": "sketch_worker" for n in range(2, self.workers + 1)}
        return {**FUNCTIONS, **extra}

    def emulator_env(self) -> dict[str, str]:
        return {
            "FIRESTORE_EMULATOR_HOST": f"127.0.0.1:{self.ports['firestore']}",
            "PUBSUB_EMULATOR_HOST": f"127.0.0.1:{self.ports['pubsub']}",
            "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{self.ports['storage']}",
            "GOOGLE_CLOUD_PROJECT": self.project,
        }

    def function_env(self) -> dict[str, str]:
        return {
            **self.emulator_env(),
            "SKETCHGEN_PROJECT": self.project,
            "SKETCHGEN_JOB_STORE": "firestore",
            "SKETCHGEN_SKETCH_TOPIC": self.topic,
            "SKETCHGEN_BLOB_URL": f"gs://{self.bucket}",
            "SKETCHGEN_AUTH": "dev",
            "SKETCHGEN_LEASE_S": str(self.lease_s),
            "SKETCHGEN_LOG_FORMAT": "json",
            "THREADS": "32",  # gunicorn threads: SSE clients and concurrent pushes each hold one
            **self.extra_env,
        }

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> DevTopology:
        logs = self.data_dir / "logs"
        shutil.rmtree(self.data_dir / "emulators", ignore_errors=True)
        try:
            self._start_emulators(logs)
            self._create_resources()
            for name in self.functions:
                self.start_function(name)
            for name in self.functions:
                wait_for_http(
                    f"http://127.0.0.1:{self.ports[name]}/healthz",
                    timeout_s=60,
                    process=self.processes[name],
                )
            if self.deliver:
                workers = [n for n, f in self.functions.items() if f == "sketch_worker"]
                self._bridge = PushBridge(
                    self.subscription,
                    [f"http://127.0.0.1:{self.ports[n]}/" for n in workers],
                    concurrency=self.push_concurrency,
                ).start()
            self._start_router()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_emulators(self, logs: Path) -> None:
        for name in ("firestore", "pubsub", "storage"):
            self.ports[name] = free_port()
        data = self.data_dir / "emulators"
        (data / "pubsub").mkdir(parents=True, exist_ok=True)
        gcloud = shutil.which("gcloud") or "gcloud"
        self.processes["firestore"] = ManagedProcess(
            "firestore-emulator",
            [
                gcloud,
                "beta",
                "emulators",
                "firestore",
                "start",
                "--quiet",
                f"--host-port=127.0.0.1:{self.ports['firestore']}",
            ],
            log_dir=logs,
        ).start()
        self.processes["pubsub"] = ManagedProcess(
            "pubsub-emulator",
            [
                gcloud,
                "beta",
                "emulators",
                "pubsub",
                "start",
                "--quiet",
                f"--host-port=127.0.0.1:{self.ports['pubsub']}",
                f"--project={self.project}",
                f"--data-dir={data / 'pubsub'}",
            ],
            log_dir=logs,
        ).start()
        self.processes["storage"] = ManagedProcess(
            "storage-emulator",
            [
                sys.executable,
                "-m",
                "gcp_storage_emulator",
                "start",
                "--host=127.0.0.1",
                f"--port={self.ports['storage']}",
                "--in-memory",
            ],
            log_dir=logs,
        ).start()
        for name in ("firestore", "pubsub", "storage"):
            wait_for_http(
                f"http://127.0.0.1:{self.ports[name]}/", timeout_s=90, process=self.processes[name]
            )

    def _create_resources(self) -> None:
        from google.cloud import pubsub_v1, storage  # type: ignore[attr-defined]

        os.environ.update(self.emulator_env())
        publisher = pubsub_v1.PublisherClient()
        subscriber = pubsub_v1.SubscriberClient()
        for topic in (self.topic, self.dead_letter_topic):
            publisher.create_topic(name=topic)
        self.ports["sketch_worker"] = free_port()
        subscriber.create_subscription(
            request={
                "name": self.subscription,
                "topic": self.topic,
                "ack_deadline_seconds": self.ack_deadline_s,
                "retry_policy": {"minimum_backoff": "1s", "maximum_backoff": "10s"},
                "dead_letter_policy": {
                    "dead_letter_topic": self.dead_letter_topic,
                    "max_delivery_attempts": 5,
                },
            }
        )
        subscriber.create_subscription(
            request={
                "name": f"projects/{self.project}/subscriptions/sketches-dead-letter",
                "topic": self.dead_letter_topic,
            }
        )
        storage.Client(project=self.project).create_bucket(self.bucket)

    def start_function(self, name: str) -> ManagedProcess:
        """(Re)start one function on its port, e.g. after a test killed the worker."""
        self.ports.setdefault(name, free_port())
        function = self.functions[name]
        process = ManagedProcess(
            name,
            [
                str(Path(sys.executable).with_name("functions-framework")),
                "--target",
                function,
                "--source",
                str(self.functions_dir / function / "main.py"),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.ports[name]),
            ],
            log_dir=self.data_dir / "logs",
            env=self.function_env(),
            cwd=REPO,
        ).start()
        self.processes[name] = process
        return process

    def __enter__(self) -> DevTopology:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start_router(self) -> None:
        router = Router(
            [(r"^/v1/jobs/[^/]+/events/?$", f"127.0.0.1:{self.ports['stream']}")],
            default=f"127.0.0.1:{self.ports['generate']}",
        )
        self._router_server, _ = serve_router(router, "127.0.0.1", self.port)

    def stop(self) -> None:
        bridge = getattr(self, "_bridge", None)
        if bridge is not None:
            bridge.stop()
        server = getattr(self, "_router_server", None)
        if server is not None:
            server.shutdown()
            server.server_close()
        for process in reversed(list(self.processes.values())):
            process.stop()
        self.processes.clear()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make dev", description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("SKETCHGEN_DEV_PORT", 8080)))
    args = parser.parse_args(argv)
    topology = DevTopology(port=args.port)
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    topology.start()
    model = "Gemini" if os.environ.get("GEMINI_API_KEY") else "offline sketch model"
    print(
        f"sketchgen dev ready on {topology.url} (auth: Bearer dev:<uid>, model: {model}; "
        f"logs in {topology.data_dir / 'logs'})",
        flush=True,
    )
    stopping.wait()
    topology.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
