"""``make dev``: the cloud topology on one machine, with real parts, in the deployed shape.

Firestore (with ``firestore.rules``) and Pub/Sub emulators from the Google Cloud CLI, a Cloud
Storage emulator from PyPI, the Firebase Auth emulator (npm ``firebase-tools``, the only
sign-in: functions verify its ID tokens as they verify Google's), and every function in
``infra/functions.yaml`` under functions-framework with exactly the variables, secrets and
permissions its cloud twin gets.
The sketch subscription has the cloud's retry and dead-letter policy and is delivered as push
(by :class:`PushBridge`: the emulator pushes only two at a time); the regenerate topic reaches
the regenerate function as CloudEvents, as Eventarc delivers it. One public origin routes the
same paths as the cloud. While it runs, ``generated_outputs/dev/topology.json`` says how to
reach every part; everything it starts, it stops.

With ``firestore_writes="contended"`` (``SKETCHGEN_DEV_FIRESTORE=contended make dev``) the
functions and the caller's clients reach Firestore through a proxy that refuses writes past
Firestore's per-document limit with ABORTED, as the cloud does
(:mod:`sketchgen.testing.firestore_proxy`); ``"counted"`` only counts them. Either way
``topology.firestore_writes`` counts every write per document.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import json
import math
import os
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import Literal

from dev.definition import REPO, Definition, Function, load_definition
from dev.processes import (
    ManagedProcess,
    emulator_command,
    free_port,
    reap_stale,
    stop_all,
    wait_for_http,
)
from dev.push_bridge import PushBridge
from dev.router import Router, serve_router
from sketchgen.testing.contention import ContentionModel
from sketchgen.testing.firestore_proxy import FirestoreContentionProxy
from sketchgen.timing import DeliveryTiming

__all__ = ["DevTopology", "main"]

# Variables every process needs from its machine (a function's own are set from the definition).
_SYSTEM_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "JAVA_HOME", "PYTHONPATH")
# Secrets a developer may have in their shell, by the variable the definition mounts.
_SECRET_SOURCES = {"GEMINI_API_KEY": ("GEMINI_API_KEY", "GOOGLE_API_KEY")}
# Variables that say where the topology's own parts are (project, emulators' stores, topics,
# bucket, the stream's origin) and the cloud's sign-in: make dev decides these, and an exported
# value is reported and not used, since it would point a function away from the topology. Every
# other variable the definition names takes the value the developer exported.
TOPOLOGY_OWNED = frozenset(
    {
        "SKETCHGEN_PROJECT",
        "SKETCHGEN_AUTH",
        "SKETCHGEN_JOB_STORE",
        "SKETCHGEN_FIRESTORE_DATABASE",
        "SKETCHGEN_BLOB_URL",
        "SKETCHGEN_SKETCH_TOPIC",
        "SKETCHGEN_REGENERATE_TOPIC",
        "SKETCHGEN_EVENTS_BASE_URL",
    }
)

# firebase-tools compiles the Auth emulator's API schemas when it starts: ~6 s of CPU, a fifth
# of it in V8's young-generation collector at its default semi-space. At 64 MB: 5.8 -> 4.6 s
# of CPU and ready 0.8 s sooner, with no more memory (3 starts each; 128 and 256 MB did worse).
_AUTH_EMULATOR_NODE_OPTION = "--max-semi-space-size=64"

# make dev's own settings, read by dev.topology's main and passed to no function.
MAKE_DEV_SETTINGS = frozenset({"SKETCHGEN_DEV_PORT", "SKETCHGEN_DEV_FIRESTORE"})


@dataclass
class DevTopology:
    port: int = 8080
    project: str = "sketchgen-dev"
    bucket: str = "sketchgen-dev"
    data_dir: Path = field(default_factory=lambda: REPO / "generated_outputs" / "dev")
    functions_dir: Path = REPO / "functions"
    # Values for variables the definition names (plain or secret), e.g. a test's model URL.
    values: dict[str, str] = field(default_factory=dict)
    # The sketch delivery's budget, lease and redelivery follow from infra/functions.yaml
    # (delivery:) and this model timeout, as Terraform's do from var.model_timeout_s
    # (sketchgen.timing, docs/decisions/0054). A test may shorten the lease or the backoff.
    model_timeout_s: float = 120.0
    lease_s: float | None = None  # None: the definition's
    backoff_s: tuple[float, float] | None = None  # retry policy (min, max); None: the definition's
    max_delivery_attempts: int = 5  # then the dead-letter topic, as in the cloud
    workers: int = 1  # sketch_worker processes, like instances sharing one subscription
    threads: int = 32  # per function process (Terraform: THREADS = the function's concurrency)
    push_concurrency: int = 64  # deliveries in flight (Cloud Run: instances x concurrency)
    deliver: bool = True  # False: sketches stay queued (benchmarks of the endpoints alone)
    # Firestore as the emulator has it ("direct"), or behind the contention proxy.
    firestore_writes: Literal["direct", "counted", "contended"] = "direct"
    definition: Definition = field(default_factory=load_definition)
    processes: dict[str, ManagedProcess] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        known = self.definition.all_env_names() | self._secret_names()
        unknown = sorted(set(self.values) - known)
        if unknown:
            raise ValueError(
                f"{', '.join(unknown)} reach no function in infra/functions.yaml: "
                "a variable only a local process has would hide a deployed bug"
            )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def manifest_path(self) -> Path:
        return self.data_dir / "topology.json"

    def topic(self, key: str = "sketch") -> str:
        return f"projects/{self.project}/topics/sketchgen-{key}"

    def subscription(self, key: str) -> str:
        return f"projects/{self.project}/subscriptions/sketchgen-{key}"

    @property
    def dead_letter_topic(self) -> str:
        return self.topic("sketch-dead-letter")

    @property
    def processes_by_function(self) -> dict[str, str]:
        """Process name → the function it runs: the worker may run as several processes."""
        names = {name: name for name in self.definition.functions}
        extra = {f"sketch_worker_{n}": "sketch_worker" for n in range(2, self.workers + 1)}
        return {**names, **extra}

    def resources(self) -> dict[str, dict[str, str]]:
        """The topics and buckets behind the definition's keys (what Terraform creates)."""
        return {
            "topics": {key: self.topic(key) for key in self.definition.topics},
            "buckets": {"outputs": self.bucket},
        }

    @property
    def timing(self) -> DeliveryTiming:
        """From the model timeout the functions get: a test's value, else the developer's
        export, else :attr:`model_timeout_s`."""
        name = "SKETCHGEN_MODEL_TIMEOUT_S"
        given = self.values.get(name) or self.exported().get(name)
        timeout = float(given) if given else self.model_timeout_s
        return self.definition.timing(model_timeout_s=timeout)

    @property
    def sketch_lease_s(self) -> float:
        return self.timing.lease_s if self.lease_s is None else self.lease_s

    @property
    def ack_deadline_s(self) -> int:
        """A push that dies without answering is delivered again after this (the cloud's)."""
        return math.ceil(self.timing.ack_deadline_s)

    @property
    def retry_backoff_s(self) -> tuple[float, float]:
        """The sketch subscription's retry policy: (minimum, maximum) backoff."""
        if self.backoff_s is not None:
            return self.backoff_s
        return (self.timing.minimum_backoff_s, self.timing.maximum_backoff_s)

    def redelivery_s(self, deliveries: int) -> float:
        """When a refused delivery comes back, under :attr:`retry_backoff_s`."""
        low, high = self.retry_backoff_s
        return replace(self.timing, minimum_backoff_s=low, maximum_backoff_s=high).backoff_s(
            deliveries
        )

    def _secret_names(self) -> set[str]:
        return {s for f in self.definition.functions.values() for s in f.secrets}

    # -- one environment per function, as Terraform gives it --------------------------------

    def local_values(self) -> dict[str, str]:
        """A value for every variable name in the definition: local stand-ins for the cloud's
        (Terraform's counterpart is local.env_values). Empty means unset, on both sides."""
        from sketchgen.image_models import DEFAULT_MODEL

        values = {
            "SKETCHGEN_PROJECT": self.project,
            "SKETCHGEN_AUTH": "firebase",  # the cloud's: tokens from the Auth emulator
            "SKETCHGEN_JOB_STORE": "firestore",
            "SKETCHGEN_FIRESTORE_DATABASE": "(default)",
            "SKETCHGEN_BLOB_URL": f"gs://{self.bucket}",
            "SKETCHGEN_SKETCH_TOPIC": self.topic("sketch"),
            "SKETCHGEN_REGENERATE_TOPIC": self.topic("regenerate"),
            "SKETCHGEN_JOB_RETENTION_DAYS": "30",
            "SKETCHGEN_MAX_DELIVERIES": str(self.max_delivery_attempts),
            "SKETCHGEN_MODEL_TIMEOUT_S": _number(self.timing.model_timeout_s),
            "SKETCHGEN_LEASE_S": _number(self.sketch_lease_s),
            "SKETCHGEN_LEASE_WAIT_S": _number(self.timing.lease_wait_s),
            "SKETCHGEN_CORS_ORIGINS": "",
            "SKETCHGEN_LOG_LEVEL": "INFO",
            "SKETCHGEN_LOG_FORMAT": "json",
            # Spans as OTLP JSON lines in data_dir/traces, metrics in data_dir/metrics
            # (`sketchgen trace JOB_ID` reads them); the cloud's is "cloud".
            "SKETCHGEN_TELEMETRY": f"file://{self.data_dir}",
            "SKETCHGEN_FIREBASE_WEB_API_KEY": "",
            "SKETCHGEN_EVENTS_BASE_URL": self.url,  # the stream, behind the same origin
            "SKETCHGEN_MODEL_RPM": "",
            "SKETCHGEN_QUOTA_WAIT_S": _number(self.timing.quota_wait_s),
            "SKETCHGEN_WORKER_OVERHEAD_S": _number(self.timing.worker_overhead_s),
            "SKETCHGEN_QUOTA_HORIZON_S": "10",
            "SKETCHGEN_USER_DAILY_IMAGES": "200",
            "SKETCHGEN_USER_ACTIVE_JOBS": "3",
            "SKETCHGEN_USER_STREAMS": "5",
            "SKETCHGEN_DEPLOYMENT_DAILY_USD": "",  # no ceiling unless exported
            "SKETCHGEN_REQUIRE_VERIFIED_EMAIL": "false",
            "SKETCHGEN_APP_CHECK": "false",  # the emulators issue no App Check tokens
            "SKETCHGEN_PROJECT_NUMBER": "",
            "SKETCHGEN_FIRESTORE_CHANNELS": "12",  # as deployed: 1000 streams / 90 a channel
            "GEMINI_MODEL": DEFAULT_MODEL,
            "GOOGLE_GEMINI_BASE_URL": "",
        }
        values.update(self.exported())
        for name, sources in _SECRET_SOURCES.items():
            values[name] = next((os.environ[s] for s in sources if os.environ.get(s)), "")
        return {**values, **self.values}

    def exported(self) -> dict[str, str]:
        """What the developer exported for the definition's variables, e.g.
        ``SKETCHGEN_USER_ACTIVE_JOBS=7 make dev``, except the ones the topology owns (an empty
        value means unset)."""
        names = self.definition.all_env_names() - TOPOLOGY_OWNED - set(_SECRET_SOURCES)
        return {name: os.environ[name] for name in sorted(names) if name in os.environ}

    def held_back(self) -> dict[str, str]:
        """Exported values make dev does not use (:data:`TOPOLOGY_OWNED`), by name."""
        return {n: os.environ[n] for n in sorted(TOPOLOGY_OWNED) if os.environ.get(n)}

    def unread(self) -> dict[str, str | None]:
        """Exported ``SKETCHGEN_*`` names no function of the definition reads (a typo, or a
        setting of the library or the CLI only), each with the definition's closest name when
        one is near: ``SKETCHGEN_USER_DAILY_IMAGE`` -> ``SKETCHGEN_USER_DAILY_IMAGES``."""
        known = self.definition.all_env_names()
        exported = (
            n for n in os.environ if n.startswith("SKETCHGEN_") and n not in MAKE_DEV_SETTINGS
        )
        return {
            name: next(iter(difflib.get_close_matches(name, known, n=1, cutoff=0.85)), None)
            for name in sorted(set(exported) - known)
        }

    def emulator_env(self) -> dict[str, str]:
        """What the client libraries read to find the emulators (the cloud needs none)."""
        return {
            "FIRESTORE_EMULATOR_HOST": self.firestore_host,
            "PUBSUB_EMULATOR_HOST": f"127.0.0.1:{self.ports['pubsub']}",
            # Through the bucket's CORS rule, as browsers reach the bucket in the cloud.
            "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{self.ports['storage_front']}",
            # As the Firebase Admin SDKs do: only with this set are emulator tokens accepted.
            "FIREBASE_AUTH_EMULATOR_HOST": f"127.0.0.1:{self.ports['auth']}",
            "GOOGLE_CLOUD_PROJECT": self.project,
        }

    @property
    def firestore_host(self) -> str:
        """Where the Python clients reach Firestore: the emulator, or the proxy before it."""
        if self.firestore_writes == "direct":
            return f"127.0.0.1:{self.ports['firestore']}"
        return f"127.0.0.1:{self.ports['firestore_proxy']}"

    @property
    def firestore_writes_model(self) -> ContentionModel | None:
        """The proxy's model: its write counts per document (None when direct)."""
        proxy = getattr(self, "_firestore_proxy", None)
        return proxy.model if proxy is not None else None

    def function_env(self, function: str) -> dict[str, str]:
        """Exactly the function's cloud variables and secrets, plus where the emulators are."""
        spec = self.definition.functions[function]
        values = self.local_values()
        names = (*self.definition.env_names(function), *spec.secrets)
        own = {name: values[name] for name in names if values[name] != ""}
        system = {k: os.environ[k] for k in _SYSTEM_ENV if k in os.environ}
        return {**system, **self.emulator_env(), "THREADS": str(self.threads), **own}

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> DevTopology:
        reap_stale(self.manifest_path)
        try:
            self._start_emulators()
            self._create_resources()
            for name in self.processes_by_function:
                self.start_function(name)
            for name in self.processes_by_function:
                self._wait_healthy(name)
            if self.deliver:
                self._start_bridges()
            self._start_router()
            self.write_manifest()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_emulators(self) -> None:
        for name in ("firestore", "pubsub", "storage", "storage_front", "auth", "hub", "logging"):
            self.ports[name] = free_port()
        logs = self.data_dir / "logs"
        commands = {
            "firestore": emulator_command(
                "firestore", self.ports["firestore"], rules=REPO / "firestore.rules"
            ),
            "pubsub": emulator_command("pubsub", self.ports["pubsub"]),
            "storage": [
                sys.executable, str(REPO / "dev" / "storage_emulator.py"), "start",
                "--host=127.0.0.1",
                f"--port={self.ports['storage']}", "--in-memory",
            ],
            "auth": self._auth_emulator_command(),
        }  # fmt: skip
        node_options = [
            os.environ.get("NODE_OPTIONS"),
            _AUTH_EMULATOR_NODE_OPTION,
        ]  # the shell's kept
        envs = {"auth": {"NODE_OPTIONS": " ".join(filter(None, node_options))}}
        for name, command in commands.items():
            self.processes[name] = ManagedProcess(
                f"{name}-emulator", command, log_dir=logs, env=envs.get(name), cwd=self.data_dir
            ).start()
        for name in commands:
            wait_for_http(
                f"http://127.0.0.1:{self.ports[name]}/", timeout_s=90, process=self.processes[name]
            )
        if self.firestore_writes != "direct":
            self.ports["firestore_proxy"] = free_port()
            model = ContentionModel(enforce=self.firestore_writes == "contended")
            self._firestore_proxy = FirestoreContentionProxy(
                f"127.0.0.1:{self.ports['firestore']}", self.ports["firestore_proxy"], model
            ).start()
        bucket_cors = Router(default=f"127.0.0.1:{self.ports['storage']}", cors_any_origin=True)
        self._servers = [serve_router(bucket_cors, "127.0.0.1", self.ports["storage_front"])[0]]

    def _auth_emulator_command(self) -> list[str]:
        """firebase-tools from web/node_modules (make web), Auth emulator only, on our ports."""
        firebase = REPO / "web" / "node_modules" / ".bin" / "firebase"
        if not firebase.exists():
            raise RuntimeError(f"{firebase} is missing: `make web` installs firebase-tools")
        config = self.data_dir / "firebase.json"
        config.parent.mkdir(parents=True, exist_ok=True)
        loopback = {"host": "127.0.0.1"}
        emulators = {
            "auth": {**loopback, "port": self.ports["auth"]},
            "hub": {**loopback, "port": self.ports["hub"]},
            "logging": {**loopback, "port": self.ports["logging"]},
            "ui": {"enabled": False},
        }
        config.write_text(json.dumps({"emulators": emulators}, indent=2))
        return [
            str(firebase), "emulators:start", "--only", "auth", "--project", self.project,
            "--config", str(config),
        ]  # fmt: skip

    def _create_resources(self) -> None:
        # The ignore below: google.cloud is a namespace package mypy cannot resolve
        from google.cloud import pubsub_v1, storage  # type: ignore[attr-defined]

        # The client libraries in this process (resources, push bridges) find the emulators
        # the way the functions do; stop() puts back what was there, so a test process that
        # ran a topology does not keep talking to its stopped emulators.
        emulators = self.emulator_env()
        self._outer_env = {name: os.environ.get(name) for name in emulators}
        os.environ.update(emulators)
        publisher = pubsub_v1.PublisherClient()
        subscriber = pubsub_v1.SubscriberClient()
        for key in self.definition.topics:
            publisher.create_topic(name=self.topic(key))
        publisher.create_topic(name=self.dead_letter_topic)
        # The cloud's sketch subscription: retry with backoff, then the dead-letter topic. The
        # push bridge plays the retry policy (redelivery_s), not the emulator: given one, the
        # emulator brings a first nack back at once, and a message whose ack deadline was set
        # is delivered twice more and then never (docs/decisions/0075).
        subscriber.create_subscription(
            request={
                "name": self.subscription("sketch-worker"),
                "topic": self.topic("sketch"),
                "ack_deadline_seconds": self.ack_deadline_s,
                "dead_letter_policy": {
                    "dead_letter_topic": self.dead_letter_topic,
                    "max_delivery_attempts": self.max_delivery_attempts,
                },
            }
        )
        # Its dead letters are pushed with the same backoff (Terraform's dead-letter push
        # subscription has its own retry policy): a dead letter the worker cannot settle yet
        # (a finaliser within its grace) comes back later, not at once in a loop.
        subscriber.create_subscription(
            request={
                "name": self.subscription("sketch-dead-letter"),
                "topic": self.dead_letter_topic,
                "retry_policy": {"minimum_backoff": "1s", "maximum_backoff": "10s"},
            }
        )
        subscriber.create_subscription(
            request={"name": self.subscription("regenerate"), "topic": self.topic("regenerate")}
        )
        storage.Client(project=self.project).create_bucket(self.bucket)

    def start_function(self, name: str) -> ManagedProcess:
        """(Re)start one function process on its port, e.g. after a test killed the worker."""
        self.ports.setdefault(name, free_port())
        function = self.processes_by_function[name]
        process = ManagedProcess(
            name,
            [
                sys.executable,
                "-m",
                "dev.function_host",
                function,
                "--port",
                str(self.ports[name]),
                "--resources",
                json.dumps(self.resources()),
            ],
            log_dir=self.data_dir / "logs",
            env=self.function_env(function),
            inherit_env=False,
            cwd=REPO,
        ).start()
        self.processes[name] = process
        return process

    def restart_function(self, name: str) -> ManagedProcess:
        """Start a function process again on its port (a test killed it) and wait until it
        reports healthy; a process that cannot start (its port taken meanwhile) fails here,
        with its log, instead of leaving its deliveries refused."""
        process = self.start_function(name)
        self._wait_healthy(name)
        return process

    def _wait_healthy(self, name: str) -> None:
        """Until the function process ``name`` reports healthy; it exiting first raises, with
        its log."""
        wait_for_http(
            f"http://127.0.0.1:{self.ports[name]}/healthz",
            timeout_s=60,
            process=self.processes[name],
        )

    def _endpoints(self, function: str, path: str = "/") -> list[str]:
        names = [n for n, f in self.processes_by_function.items() if f == function]
        return [f"http://127.0.0.1:{self.ports[n]}{path}" for n in names]

    def _start_bridges(self) -> None:
        bridges = []
        for spec in self.definition.functions.values():
            trigger = spec.trigger
            if trigger.type == "push":
                bridges.append(
                    PushBridge(
                        self.subscription("sketch-worker"),
                        self._endpoints(spec.name),
                        concurrency=self.push_concurrency,
                        # The emulator redelivers a nack at once; the cloud backs off.
                        backoff=self.redelivery_s,
                    )
                )
                if trigger.dead_letter_path:
                    bridges.append(
                        PushBridge(
                            self.subscription("sketch-dead-letter"),
                            self._endpoints(spec.name, trigger.dead_letter_path),
                            concurrency=4,
                        )
                    )
            elif trigger.type == "event":
                assert trigger.topic is not None
                bridges.append(
                    PushBridge(
                        self.subscription(trigger.topic),
                        self._endpoints(spec.name),
                        concurrency=1,  # Terraform: one instance, one request
                        cloudevent=True,
                    )
                )
        self._bridges = [bridge.start() for bridge in bridges]

    def _start_router(self) -> None:
        http = [f for f in self.definition.functions.values() if f.trigger.type == "http"]
        stream = next(f.name for f in http if f.entry_point == "stream")
        api = next(f.name for f in http if f.entry_point == "generate")
        router = Router(
            [(r"^/v1/jobs/[^/]+/events/?$", f"127.0.0.1:{self.ports[stream]}")],
            default=f"127.0.0.1:{self.ports[api]}",
        )
        self._servers.append(serve_router(router, "127.0.0.1", self.port)[0])

    def manifest(self) -> dict[str, object]:
        """How to reach every part (in the spirit of the Firebase emulator hub's /emulators)."""
        return {
            "api_url": self.url,
            "project_id": self.project,
            "bucket": self.bucket,
            # The emulator itself (the JS SDK and rules); Python clients use firestore_host.
            "firestore_emulator_host": f"127.0.0.1:{self.ports['firestore']}",
            "firestore_host": self.firestore_host,
            "pubsub_emulator_host": f"127.0.0.1:{self.ports['pubsub']}",
            "storage_emulator_host": f"http://127.0.0.1:{self.ports['storage_front']}",
            "auth_emulator_host": f"127.0.0.1:{self.ports['auth']}",
            "functions": {
                name: {
                    "function": function,
                    "url": f"http://127.0.0.1:{self.ports[name]}",
                    "pid": self.processes[name].pid,
                }
                for name, function in self.processes_by_function.items()
            },
            "pids": [p.pid for p in self.processes.values() if p.pid is not None],
            "supervisor_pid": os.getpid(),
        }

    def write_manifest(self) -> None:
        self.manifest_path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.manifest_path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(self.manifest(), indent=2) + "\n")
        temporary.replace(self.manifest_path)

    def __enter__(self) -> DevTopology:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        for bridge in getattr(self, "_bridges", []):
            bridge.stop()
        self._bridges = []
        for server in getattr(self, "_servers", []):
            server.shutdown()
            server.server_close()
        self._servers = []
        stop_all(list(self.processes.values()))
        self.processes.clear()
        proxy = getattr(self, "_firestore_proxy", None)
        if proxy is not None:
            proxy.stop()
        for name, value in getattr(self, "_outer_env", {}).items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._outer_env = {}
        with contextlib.suppress(FileNotFoundError):
            self.manifest_path.unlink()


def _number(value: float) -> str:
    """As Terraform's tostring() writes a number: 60, not 60.0."""
    return f"{value:g}"


class _StopSignal(Exception):  # noqa: N818 - a signal, not an error
    """Raised in the main thread by SIGINT/SIGTERM: nothing else runs in a signal handler."""


def _on_signal(signum: int, frame: FrameType | None) -> None:
    # Ignore repeats while stopping: a second Ctrl-C must not interrupt the clean-up.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise _StopSignal


def _describe(topology: DevTopology, functions: Mapping[str, Function]) -> str:
    keyed = [f for f in functions.values() if "GEMINI_API_KEY" in f.secrets]
    has_key = bool(topology.local_values().get("GEMINI_API_KEY"))
    model = "Gemini" if has_key else "offline sketch model (no GEMINI_API_KEY)"
    return (
        f"sketchgen dev ready on {topology.url} (sign-in: Firebase Auth emulator at "
        f"http://127.0.0.1:{topology.ports['auth']}; {', '.join(f.name for f in keyed)}: "
        f"{model}); how to connect: {topology.manifest_path}; "
        f"logs in {topology.data_dir / 'logs'}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make dev", description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("SKETCHGEN_DEV_PORT", 8080)))
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    writes = os.environ.get("SKETCHGEN_DEV_FIRESTORE", "direct")
    if writes not in ("direct", "counted", "contended"):
        parser.error("SKETCHGEN_DEV_FIRESTORE must be direct, counted or contended")
    # The ignore below: a str, checked against the Literal's values just above
    topology = DevTopology(port=args.port, firestore_writes=writes)  # type: ignore[arg-type]
    if args.data_dir is not None:
        topology.data_dir = args.data_dir
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    for name, value in topology.held_back().items():
        print(
            f"make dev: not using the exported {name}={value!r}: the topology sets it "
            f"to {topology.local_values()[name]!r}",
            file=sys.stderr,
            flush=True,
        )
    for name, near in topology.unread().items():
        print(
            f"make dev: not using the exported {name}={os.environ[name]!r}: no function in "
            f"infra/functions.yaml reads it" + (f" (did you mean {near}?)" if near else ""),
            file=sys.stderr,
            flush=True,
        )
    try:
        topology.start()
        print(_describe(topology, topology.definition.functions), flush=True)
        while True:
            signal.pause()
    except _StopSignal:
        pass
    finally:
        topology.stop()
    print("sketchgen dev stopped", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
