"""The `make dev` topology against the local Gemini server, for module-scoped fixtures.

Firestore is reached through the contention model (writes past 1/s, burst 3, per document
refused with ABORTED, as in the cloud) unless ``SKETCHGEN_TEST_FIRESTORE=direct`` (or
``counted``) says otherwise: a design that writes a hot document fails here, not in the cloud.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dev.processes import free_port
from dev.topology import DevTopology
from sketchgen.testing.gemini_server import FakeGeminiServer

_EMULATORS = ("FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST", "STORAGE_EMULATOR_HOST")


def dev_topology(
    gemini: FakeGeminiServer, data_dir: Path, *, env: dict[str, str] | None = None, **options: Any
) -> Iterator[DevTopology]:
    """Started, yielded, stopped: ``yield from dev_topology(...)`` in a fixture."""
    values = {"GEMINI_API_KEY": "test-key", "GOOGLE_GEMINI_BASE_URL": gemini.url, **(env or {})}
    before = {name: os.environ.get(name) for name in _EMULATORS}
    options.setdefault("firestore_writes", os.environ.get("SKETCHGEN_TEST_FIRESTORE", "contended"))
    with DevTopology(port=free_port(), data_dir=data_dir, values=values, **options) as topo:
        yield topo
    # Stopped, it leaves this process's environment as it found it: a later test's client
    # must not be pointed at this topology's emulators, which are gone.
    assert {name: os.environ.get(name) for name in _EMULATORS} == before
