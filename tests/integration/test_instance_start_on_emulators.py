"""An instance connects its clients before it reports healthy, not on its first request.

``main.py`` builds the service but no gRPC client (gunicorn forks after importing it); the
serving process then connects Firestore and Pub/Sub, and the health check
(:meth:`sketchgen.bootstrap.Instance.ready`) answers 503 until it has."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sketchgen import bootstrap
from sketchgen.adapters.gcp import _firestore
from sketchgen.adapters.gcp.pubsub_task_queue import PubSubTaskQueue
from sketchgen.settings import get_settings
from tests.functions.conftest import function_client, function_client_and_instance
from tests.integration.conftest import PROJECT


@pytest.fixture
def cloud_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, firestore_emulator: str, pubsub_emulator: str
) -> Iterator[Path]:
    # The ignore below: google.cloud is a namespace package mypy cannot resolve
    from google.cloud import pubsub_v1  # type: ignore[attr-defined]

    topic = f"projects/{PROJECT}/topics/start-{time.monotonic_ns()}"
    pubsub_v1.PublisherClient().create_topic(name=topic)
    monkeypatch.setenv("SKETCHGEN_AUTH", "dev")
    monkeypatch.setenv("SKETCHGEN_PROJECT", PROJECT)
    monkeypatch.setenv("SKETCHGEN_JOB_STORE", "firestore")
    monkeypatch.setenv("SKETCHGEN_SKETCH_TOPIC", topic)
    monkeypatch.setenv("SKETCHGEN_BLOB_URL", f"file://{tmp_path / 'blobs'}")
    monkeypatch.setenv("SKETCHGEN_OFFLINE", "1")
    get_settings.cache_clear()
    _firestore.forget_clients()
    yield tmp_path
    get_settings.cache_clear()
    _firestore.forget_clients()


def test_healthy_only_once_the_clients_are_connected(cloud_env: Path) -> None:
    client, instance = function_client_and_instance("generate", "generate")
    built = instance.built()
    assert built is not None and isinstance(built.queue, PubSubTaskQueue)
    assert _firestore.clients_made() == 0  # nothing connected at import
    assert not built.queue.connected

    deadline = time.monotonic() + 60
    while client.get("/healthz").status_code != 200:  # what make dev and a probe wait for
        assert time.monotonic() < deadline, "never healthy"
    assert _firestore.clients_made() == 1  # connected, with one read made
    assert built.queue.connected
    accepted = client.post(
        "/v1/jobs",
        json={"brief": "golf mascot", "style_id": "loose-ink-mascot", "num_images": 3},
        headers={"Authorization": "Bearer dev:alice"},
    )
    assert accepted.status_code == 202, accepted.get_data(as_text=True)


def test_unhealthy_while_connecting(cloud_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A Firestore that accepts connections and never answers: connecting takes the timeout.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{silent.getsockname()[1]}")
    monkeypatch.setattr(bootstrap.startup, "CONNECT_TIMEOUT_S", 4.0)
    try:
        client = function_client("generate", "generate")
        started = time.monotonic()
        first = client.get("/healthz")
        assert first.status_code == 503 and first.get_json() == {"status": "starting"}
        while client.get("/healthz").status_code != 200:  # the connect gave up: it serves,
            assert time.monotonic() - started < 30  # and its requests connect themselves
    finally:
        silent.close()
