"""What the library's classes use when they are not told: the configured defaults.

The library reads no settings and builds no adapter (the import contracts in
``pyproject.toml`` forbid it), yet ``ImageGenerator()`` with no model, ``GenerationConfig()``
with no ``model_name`` and ``StyleRegistry()`` with no folder must behave the same wherever
they are imported from (issue 26). So they ask the provider installed here, and
``import sketchgen`` — which runs before any ``sketchgen.*`` module can be used — installs the
settings-backed one (:class:`sketchgen._front.ConfiguredDefaults`): ``GEMINI_API_KEY`` picks
Nano Banana or the offline model, ``GEMINI_MODEL`` the model, ``SKETCHGEN_STYLES_DIR`` the
styles. A program (or test) can install its own with :func:`use_defaults` (ADR 0044).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from sketchgen.errors import ConfigError

__all__ = ["LibraryDefaults", "current_defaults", "use_defaults"]


class LibraryDefaults(Protocol):
    # The two parts are typed Any here, not as their ports: this module sits below
    # GenerationConfig, and sketchgen.ports imports the job records that hold one (a cycle,
    # even if only for types). ImageGenerator, which uses them, types them as the ports.

    def image_model(self, *, offline: bool | None = None) -> Any:
        """The model ``ImageGenerator()`` draws with; ``offline=True`` asks for the offline
        sketch model whatever is configured."""
        ...

    def max_attempts(self) -> int:
        """Attempts per sketch (the retry policy's), when none is given."""
        ...

    def model_name(self) -> str:
        """The Gemini model a ``GenerationConfig`` asks for when none is named."""
        ...

    def styles_dir(self) -> Path | None:
        """The styles folder; ``None`` for the styles shipped with the package."""
        ...

    def folder_store(self, root: Path) -> Any:
        """The blob store a library job writes its folder through (``root`` is the output
        folder; the job's files go under it in the library's layout)."""
        ...


_provider: LibraryDefaults | None = None


def use_defaults(provider: LibraryDefaults | None) -> LibraryDefaults | None:
    """Install ``provider``; returns the one it replaces (so a test can put it back)."""
    global _provider
    previous, _provider = _provider, provider
    return previous


def current_defaults() -> LibraryDefaults:
    if _provider is None:
        raise ConfigError(
            "no library defaults are installed (import sketchgen installs them); pass the "
            "model, model name and styles folder explicitly",
            field="model",
        )
    return _provider
