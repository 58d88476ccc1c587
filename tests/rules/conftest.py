"""The real Firestore emulator (Google Cloud CLI, Java 17), started once with firestore.rules."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers.auth import unsigned_token

REPO_ROOT = Path(__file__).resolve().parents[2]
RULES = REPO_ROOT / "firestore.rules"
PROJECT = "sketchgen-rules-test"
STARTUP_TIMEOUT_S = 90.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop(process: subprocess.Popen[bytes]) -> None:
    """gcloud starts java in the same process group: signal the whole group."""
    if process.poll() is not None:
        return
    for sig, wait_s in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def _wait_ready(base_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"Firestore emulator exited with {process.returncode}:\n{log.read_text()[-3000:]}"
            )
        try:
            if httpx.get(base_url + "/", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"Firestore emulator not ready in {STARTUP_TIMEOUT_S}s:\n{log.read_text()}")


@dataclass(frozen=True)
class Emulator:
    base_url: str
    project: str = PROJECT

    @property
    def documents(self) -> str:
        return f"{self.base_url}/v1/projects/{self.project}/databases/(default)/documents"


@pytest.fixture(scope="session")
def firestore_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        pytest.fail("gcloud is not on PATH: the rules tests need the Firestore emulator")
    port = _free_port()
    log = tmp_path_factory.mktemp("firestore-emulator") / "emulator.log"
    env = {**os.environ, "CLOUDSDK_CORE_DISABLE_PROMPTS": "1"}
    env.pop("FIRESTORE_EMULATOR_HOST", None)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                gcloud,
                "beta",
                "emulators",
                "firestore",
                "start",
                f"--host-port=127.0.0.1:{port}",
                f"--rules={RULES}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    try:
        base_url = f"http://127.0.0.1:{port}"
        _wait_ready(base_url, process, log)
        yield Emulator(base_url)
    finally:
        _stop(process)


def user_token(uid: str, project: str = PROJECT) -> str:
    """A Firebase ID token for ``uid``, unsigned (``alg: none``), as the emulator accepts."""
    return unsigned_token(uid, project)


@pytest.fixture
def admin(firestore_emulator: Emulator) -> Iterator[httpx.Client]:
    """Bypasses the rules (the emulator's admin token), as the functions' server SDK does."""
    headers = {"Authorization": "Bearer owner"}
    with httpx.Client(base_url=firestore_emulator.documents, headers=headers) as client:
        yield client


@pytest.fixture
def as_user(firestore_emulator: Emulator) -> Iterator[Any]:
    clients: list[httpx.Client] = []

    def client_for(uid: str | None) -> httpx.Client:
        headers = {} if uid is None else {"Authorization": f"Bearer {user_token(uid)}"}
        client = httpx.Client(base_url=firestore_emulator.documents, headers=headers)
        clients.append(client)
        return client

    yield client_for
    for client in clients:
        client.close()
