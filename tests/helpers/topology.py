"""The `make dev` topology against the local Gemini server, for module-scoped fixtures.

Firestore is reached through the contention model (writes past 1/s, burst 3, per document
refused with ABORTED, as in the cloud) unless ``SKETCHGEN_TEST_FIRESTORE=direct`` (or
``counted``) says otherwise: a design that writes a hot document fails here, not in the cloud.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from dev.processes import free_port
from dev.topology import DevTopology

_EMULATORS = ("FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST", "STORAGE_EMULATOR_HOST")


class ModelServer(Protocol):
    """Where the topology's functions reach the model: the stand-in, in this process
    (:class:`~sketchgen.testing.gemini_server.FakeGeminiServer`) or its own
    (:class:`tests.helpers.servers.StandIn`)."""

    @property
    def url(self) -> str: ...


def dev_topology(
    gemini: ModelServer, data_dir: Path, *, env: dict[str, str] | None = None, **options: Any
) -> Iterator[DevTopology]:
    """Started, yielded, stopped: ``yield from dev_topology(...)`` in a fixture."""
    values = {"GEMINI_API_KEY": "test-key", "GOOGLE_GEMINI_BASE_URL": gemini.url, **(env or {})}
    before = {name: os.environ.get(name) for name in _EMULATORS}
    options.setdefault("firestore_writes", os.environ.get("SKETCHGEN_TEST_FIRESTORE", "contended"))
    # The retry policy's backoff, shortened from the deployed 10-600 s (infra/functions.yaml):
    # a test's refused deliveries still come back spaced out and doubling, within its timeouts.
    options.setdefault("backoff_s", (1.0, 10.0))
    with DevTopology(port=free_port(), data_dir=data_dir, values=values, **options) as topo:
        yield topo
    # Stopped, it leaves this process's environment as it found it: a later test's client
    # must not be pointed at this topology's emulators, which are gone.
    assert {name: os.environ.get(name) for name in _EMULATORS} == before


FINAL = frozenset({"done", "partial", "failed", "cancelled"})


def final_job(
    url: str, job_id: str, headers: dict[str, str], timeout_s: float = 60.0
) -> dict[str, Any]:
    """The job once it has ended, without polling: its event stream
    (``/v1/jobs/{id}/events``) is read until the server closes it, which it does when the job
    ends; one GET then returns the final state. A stream cut short (an instance restarted
    under it) is opened again, until ``timeout_s``; past it the test fails with the job."""
    import time

    import httpx

    deadline = time.monotonic() + timeout_s
    while True:
        left = max(1.0, deadline - time.monotonic())
        timeout = httpx.Timeout(10.0, read=left)
        with httpx.stream(
            "GET", f"{url}/v1/jobs/{job_id}/events", headers=headers, timeout=timeout
        ) as events:
            assert events.status_code == 200, events.read().decode()
            for _ in events.iter_bytes():  # the stream's keep-alives bring this back
                if time.monotonic() > deadline:
                    break  # a job that never ends fails the test, it does not hang it
        job: dict[str, Any] = httpx.get(f"{url}/v1/jobs/{job_id}", headers=headers).json()
        if job["status"] in FINAL:
            return job
        assert time.monotonic() < deadline, f"job {job_id} did not end: {job}"
