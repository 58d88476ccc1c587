"""Each function through functions-framework's own app and test client, on local adapters."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import functions_framework
import pytest
from flask import Flask
from flask.testing import FlaskClient
from starlette.testclient import TestClient

from sketchgen.bootstrap import Instance
from sketchgen.settings import get_settings
from tests.helpers.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
ALICE = {"Authorization": "Bearer dev:alice"}
BOB = {"Authorization": "Bearer dev:bob"}


@pytest.fixture
def local_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("SKETCHGEN_AUTH", "dev")
    monkeypatch.setenv("SKETCHGEN_JOB_STORE", f"sqlite:///{tmp_path / 'jobs.sqlite3'}")
    monkeypatch.setenv("SKETCHGEN_BLOB_URL", f"file://{tmp_path / 'blobs'}")
    monkeypatch.setenv("SKETCHGEN_OFFLINE", "1")
    monkeypatch.delenv("SKETCHGEN_SKETCH_TOPIC", raising=False)
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def function_app(name: str, target: str) -> tuple[Any, Instance]:
    """functions-framework's app for the function, as deployed (its ``main.py`` imported
    afresh), and the instance that ``main.py`` holds."""
    app = functions_framework.create_app(target, str(REPO / "functions" / name / "main.py"))
    instance = sys.modules["main"].instance  # functions-framework imports main.py as "main"
    assert isinstance(instance, Instance)
    return app, instance


def function_client(name: str, target: str) -> Any:
    """functions-framework's app for the function: Flask's test client for a sync function,
    Starlette's (httpx) for an async one (the stream function)."""
    return function_client_and_instance(name, target)[0]


def function_client_and_instance(name: str, target: str) -> tuple[Any, Instance]:
    app, instance = function_app(name, target)
    if isinstance(app, Flask):
        return app.test_client(), instance
    from starlette.testclient import TestClient

    return TestClient(app), instance


@pytest.fixture
def api(local_env: Path) -> FlaskClient:
    return function_client("generate", "generate")


@pytest.fixture
def stream(local_env: Path) -> Iterator[TestClient]:
    with function_client("stream", "stream") as client:  # one event loop for the test
        yield client


@pytest.fixture
def wait_done(api: FlaskClient) -> Callable[..., dict[str, Any]]:
    def wait(job_id: str, headers: dict[str, str] = ALICE, timeout: float = 30) -> dict[str, Any]:
        # The job runs on the function's own worker threads; its state is seen as a client
        # sees it, over the API.
        def ended() -> dict[str, Any] | None:
            body: dict[str, Any] = api.get(f"/v1/jobs/{job_id}", headers=headers).get_json()
            return body if body["status"] in {"done", "partial", "failed", "cancelled"} else None

        return wait_until(ended, f"job {job_id} did not finish", timeout_s=timeout)

    return wait
