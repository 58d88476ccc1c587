from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "deploy_smoke: installs each staged function's requirements.txt in a fresh virtualenv "
        "and imports main (slow, needs PyPI); run with -m deploy_smoke",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """deploy_smoke tests run when asked for by name (-m deploy_smoke, as .ci/run does in its
    own step); otherwise they are skipped, saying why (pytest -ra lists the reason), never
    silently deselected."""
    if "deploy_smoke" in (config.option.markexpr or ""):
        return
    skip = pytest.mark.skip(
        reason="deploy_smoke: installs each staged function's requirements from PyPI in a fresh "
        "virtualenv (minutes, needs the network); run with -m deploy_smoke (.ci/run does)"
    )
    for item in items:
        if item.get_closest_marker("deploy_smoke"):
            item.add_marker(skip)
