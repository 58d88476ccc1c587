from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "deploy_smoke: installs each staged function's requirements.txt in a fresh virtualenv "
        "and imports main (slow, needs PyPI); run with -m deploy_smoke",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """deploy_smoke tests run only when asked for by name (-m deploy_smoke)."""
    if "deploy_smoke" in (config.option.markexpr or ""):
        return
    smoke = [item for item in items if item.get_closest_marker("deploy_smoke")]
    if smoke:
        config.hook.pytest_deselected(items=smoke)
        items[:] = [item for item in items if not item.get_closest_marker("deploy_smoke")]
