"""What `make dev` does with the settings a developer exports (dev.topology): the definition's
reach the functions; the rest are reported, a misspelt one with the name it is near."""

from __future__ import annotations

import os

import pytest

from dev.topology import DevTopology


def test_exported_names_no_function_reads_are_found_with_the_name_they_are_near(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [n for n in os.environ if n.startswith("SKETCHGEN_")]:
        monkeypatch.delenv(name)
    exported = {
        "SKETCHGEN_USER_DAILY_IMAGE": "6",  # one letter short
        "SKETCHGEN_MODELRPM": "30",  # an underscore short
        "SKETCHGEN_OFFLINE": "1",  # the CLI's and the library's, no function's
        "SKETCHGEN_USER_ACTIVE_JOBS": "7",  # the definition's: passed on, not reported
        "SKETCHGEN_DEV_PORT": "9000",  # make dev's own
        "SKETCHGEN_PROJECT": "elsewhere",  # the topology's own: reported by held_back
    }
    for name, value in exported.items():
        monkeypatch.setenv(name, value)
    topology = DevTopology()
    assert topology.unread() == {
        "SKETCHGEN_MODELRPM": "SKETCHGEN_MODEL_RPM",
        "SKETCHGEN_OFFLINE": None,
        "SKETCHGEN_USER_DAILY_IMAGE": "SKETCHGEN_USER_DAILY_IMAGES",
    }
    assert topology.held_back() == {"SKETCHGEN_PROJECT": "elsewhere"}
    assert topology.exported()["SKETCHGEN_USER_ACTIVE_JOBS"] == "7"
