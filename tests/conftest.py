from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from sketchgen.schemas import Style
from sketchgen.styles import StyleRegistry
from tests.helpers.fakes import drawing_png
from tests.helpers.telemetry import otel  # noqa: F401 - a fixture, offered to every test

# make test runs a module at a time on each test worker (--dist loadscope). A module that starts
# make dev's topology or a browser takes one to three minutes, one on the emulators tens of
# seconds, most others a second or two. Sent first, the long ones run side by side and the many
# short ones fill the workers' gaps at the end. In xdist's own order (the most tests first, which
# make test turns off) the longest modules started last and ran on alone: the suite took 373 s
# against 247 s in this order, one run each on a 2-core machine (docs/BENCHMARKS.md).
_LONGEST_FIRST = ("tests/e2e/", "tests/web/", "tests/integration/")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def start_order(item: pytest.Item) -> int:
        return next(
            (n for n, folder in enumerate(_LONGEST_FIRST) if item.nodeid.startswith(folder)),
            len(_LONGEST_FIRST),
        )

    items.sort(key=start_order)  # stable: each module's tests keep their order


@pytest.fixture(autouse=True)
def _no_real_gemini(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach Gemini: drop any key from the environment of the test run."""
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    from sketchgen.settings import get_settings

    get_settings.cache_clear()


@pytest.fixture
def style_registry(tmp_path: Path) -> StyleRegistry:
    refs = tmp_path / "src"
    refs.mkdir()
    for i, name in enumerate(("golf-mascot", "coffee-cup", "space-fox", "banned-shaded")):
        (refs / f"{name}.png").write_bytes(drawing_png(seed=i * 7))
    banned = hashlib.sha256((refs / "banned-shaded.png").read_bytes()).hexdigest()
    registry = StyleRegistry(tmp_path / "styles")
    registry.add_style(
        "test-ink",
        "Test ink",
        description="bold loose ink",
        visual_rules=["Thick outlines"],
        references=[
            (refs / "golf-mascot.png", ["golf", "mascot", "sports"]),
            (refs / "coffee-cup.png", ["coffee", "food"]),
            (refs / "space-fox.png", ["space", "fox", "animal"]),
            (refs / "banned-shaded.png", ["golf", "mascot", "shaded"]),
        ],
        do_not_use=[banned],
    )
    return registry


@pytest.fixture
def style(style_registry: StyleRegistry) -> Style:
    return style_registry.get_style("test-ink")
