"""The `make dev` topology against the local Gemini server, for module-scoped fixtures."""

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
    with DevTopology(port=free_port(), data_dir=data_dir, values=values, **options) as topo:
        yield topo
    # Stopped, it leaves this process's environment as it found it: a later test's client
    # must not be pointed at this topology's emulators, which are gone.
    assert {name: os.environ.get(name) for name in _EMULATORS} == before
