"""The front door: ``sketchgen.make_sketches("playful golf mascot", n=4)`` runs a whole job,
and :class:`ConfiguredDefaults`, what the library's classes use when they are not told.

Like the CLI this is an entry point, not library: it reads no settings. The model (Nano
Banana when ``GEMINI_API_KEY`` is set, else the offline sketch model), ``GEMINI_MODEL``, the
styles folder and the output folder come from :mod:`sketchgen.bootstrap.library`, which runs
exactly the library calls the CLI runs.

``import sketchgen`` imports this module and installs :class:`ConfiguredDefaults` (see
:mod:`sketchgen.defaults`); everything else loads on first call.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sketchgen.defaults import LibraryDefaults
    from sketchgen.generate.generator import GenerationResult
    from sketchgen.ports import BlobStore, ImageModel

__all__ = ["DEFAULT_STYLE", "ConfiguredDefaults", "make_sketches"]

DEFAULT_STYLE = "loose-ink-mascot"  # the CLI's too


class ConfiguredDefaults:
    """The library's defaults from the settings: bootstrap's
    (:class:`sketchgen.bootstrap.library.SettingsDefaults`), loaded on first use so that
    ``import sketchgen`` imports neither bootstrap nor the settings."""

    def _configured(self) -> LibraryDefaults:
        from sketchgen.bootstrap.library import SettingsDefaults

        return SettingsDefaults()

    def image_model(self, *, offline: bool | None = None) -> ImageModel:
        model: ImageModel = self._configured().image_model(offline=offline)
        return model

    def max_attempts(self) -> int:
        return self._configured().max_attempts()

    def model_name(self) -> str:
        return self._configured().model_name()

    def styles_dir(self) -> Path | None:
        return self._configured().styles_dir()

    def folder_store(self, root: Path) -> BlobStore:
        store: BlobStore = self._configured().folder_store(root)
        return store


def make_sketches(
    brief: str,
    *,
    style: str = DEFAULT_STYLE,
    n: int = 4,
    offline: bool | None = None,
    top_k: int | None = None,
    **options: Any,
) -> GenerationResult:
    """Make ``n`` sketches of ``brief`` in ``style``; returns when every sketch has ended.

    ``options`` are :class:`~sketchgen.generate.GenerationConfig` fields (``resolution``,
    ``image_size``, ``aspect_ratio``, ``seed``, ``allow_text``, ``model_name``,
    ``output_dir``). ``offline=True`` uses the offline model even with a key. Bad input
    raises the same :class:`~sketchgen.errors.InputError` the CLI and the HTTP API report.
    """
    from sketchgen.bootstrap.library import make_sketches as configured

    return configured(brief, style=style, n=n, offline=offline, top_k=top_k, **options)
