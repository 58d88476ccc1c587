"""The real Firestore emulator (Google Cloud CLI, Java 17), started once with firestore.rules."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from dev.processes import ManagedProcess, emulator_command, free_port, wait_for_http
from tests.helpers.auth import unsigned_token

REPO_ROOT = Path(__file__).resolve().parents[2]
RULES = REPO_ROOT / "firestore.rules"
PROJECT = "sketchgen-rules-test"
STARTUP_TIMEOUT_S = 90.0
# The emulator's first rules evaluations compile the rules and warm its JVM: seconds on a
# loaded runner (httpx's default of 5 s was exceeded in a full run at 4 workers on 2 cores).
TIMEOUT = httpx.Timeout(30.0)


@dataclass(frozen=True)
class Emulator:
    base_url: str
    project: str = PROJECT

    @property
    def documents(self) -> str:
        return f"{self.base_url}/v1/projects/{self.project}/databases/(default)/documents"


@pytest.fixture(scope="session")
def firestore_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    port = free_port()
    try:
        command = emulator_command("firestore", port, rules=RULES)
    except RuntimeError as error:  # no gcloud on PATH: the message says what to install
        pytest.fail(str(error))
    logs = tmp_path_factory.mktemp("firestore-emulator")
    process = ManagedProcess("firestore-rules", command, log_dir=logs).start()
    try:
        base_url = f"http://127.0.0.1:{port}"
        wait_for_http(base_url + "/", timeout_s=STARTUP_TIMEOUT_S, process=process)
        emulator = Emulator(base_url)
        # One read through the rules before the first test, so no test pays their warm-up.
        httpx.get(f"{emulator.documents}/warm/up", timeout=STARTUP_TIMEOUT_S)
        yield emulator
    finally:
        process.stop()


def user_token(uid: str, project: str = PROJECT) -> str:
    """A Firebase ID token for ``uid``, unsigned (``alg: none``), as the emulator accepts."""
    return unsigned_token(uid, project)


@pytest.fixture
def admin(firestore_emulator: Emulator) -> Iterator[httpx.Client]:
    """Bypasses the rules (the emulator's admin token), as the functions' server SDK does."""
    headers = {"Authorization": "Bearer owner"}
    with httpx.Client(
        base_url=firestore_emulator.documents, headers=headers, timeout=TIMEOUT
    ) as client:
        yield client


@pytest.fixture
def as_user(firestore_emulator: Emulator) -> Iterator[Any]:
    clients: list[httpx.Client] = []

    def client_for(uid: str | None) -> httpx.Client:
        headers = {} if uid is None else {"Authorization": f"Bearer {user_token(uid)}"}
        client = httpx.Client(
            base_url=firestore_emulator.documents, headers=headers, timeout=TIMEOUT
        )
        clients.append(client)
        return client

    yield client_for
    for client in clients:
        client.close()
