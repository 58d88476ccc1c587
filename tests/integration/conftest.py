"""Real emulators for the integration tests, started once per session.

Firestore and Pub/Sub come from the Google Cloud CLI (their JVMs run directly, as `make dev`
runs them, so a test run that is killed takes them with it instead of leaving them behind a
gcloud wrapper), Cloud Storage from the gcp-storage-emulator package, S3 from moto's server.
If one cannot start, the tests fail: they are never skipped.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dev.processes import ManagedProcess, emulator_command, free_port, wait_for_http

PROJECT = "sketchgen-test"


@pytest.fixture(scope="session")
def emulator_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("emulator-logs")


def _emulator(name: str, port: int) -> list[str]:
    try:
        return emulator_command(name, port)
    except RuntimeError as error:  # no gcloud on PATH: the message says what to install
        pytest.fail(str(error))


def _serve(
    name: str, command: list[str], port: int, logs: Path, env_var: str, value: str
) -> Iterator[str]:
    process = ManagedProcess(name, command, log_dir=logs).start()
    previous = {k: os.environ.get(k) for k in (env_var, "GOOGLE_CLOUD_PROJECT")}
    try:
        wait_for_http(f"http://127.0.0.1:{port}/", timeout_s=120, process=process)
        os.environ[env_var] = value
        os.environ["GOOGLE_CLOUD_PROJECT"] = PROJECT
        yield value
    finally:
        process.stop()
        for key, old in previous.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


@pytest.fixture(scope="session")
def firestore_emulator(emulator_logs: Path) -> Iterator[str]:
    port = free_port()
    command = _emulator("firestore", port)
    yield from _serve(
        "firestore", command, port, emulator_logs, "FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{port}"
    )


@pytest.fixture(scope="session")
def pubsub_emulator(emulator_logs: Path) -> Iterator[str]:
    port = free_port()
    command = _emulator("pubsub", port)
    yield from _serve(
        "pubsub", command, port, emulator_logs, "PUBSUB_EMULATOR_HOST", f"127.0.0.1:{port}"
    )


@pytest.fixture(scope="session")
def gcs_emulator(emulator_logs: Path) -> Iterator[str]:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "gcp_storage_emulator",
        "start",
        "--host=127.0.0.1",
        f"--port={port}",
        "--in-memory",
    ]
    yield from _serve(
        "gcs", command, port, emulator_logs, "STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{port}"
    )


@pytest.fixture(scope="session")
def moto_server(emulator_logs: Path) -> Iterator[str]:
    port = free_port()
    moto = Path(sys.executable).with_name("moto_server")
    for key, value in (
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        os.environ.setdefault(key, value)
    url = f"http://127.0.0.1:{port}"
    yield from _serve(
        "moto",
        [str(moto), "-H", "127.0.0.1", "-p", str(port)],
        port,
        emulator_logs,
        "SKETCHGEN_S3_ENDPOINT_URL",
        url,
    )
