"""The seed-shaped classes as ``import sketchgen`` offers them: the library's, with the
configured defaults filled in from the settings (through :mod:`sketchgen.bootstrap`).

``sketchgen.ImageGenerator()`` draws with Nano Banana when ``GEMINI_API_KEY`` is set, else
with the offline sketch model; ``sketchgen.GenerationConfig()`` asks for ``GEMINI_MODEL``;
``sketchgen.StyleRegistry()`` reads ``SKETCHGEN_STYLES_DIR`` when set. The classes under
:mod:`sketchgen.generate` and :mod:`sketchgen.styles` take all of these as arguments and
never read settings. Loaded on first use of one of these names.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from sketchgen.generate import config as _config
from sketchgen.generate import generator as _generator
from sketchgen.generate.base import ImageModelAdapter
from sketchgen.generate.retry import RetryPolicy
from sketchgen.styles import registry as _registry

__all__ = ["GenerationConfig", "ImageGenerator", "StyleRegistry"]


def _configured_model_name() -> str:
    from sketchgen.settings import get_settings

    return get_settings().gemini_model


class GenerationConfig(_config.GenerationConfig):
    __doc__ = _config.GenerationConfig.__doc__

    model_name: str = Field(default_factory=_configured_model_name, min_length=1, max_length=100)


class ImageGenerator(_generator.ImageGenerator):
    """The library's ImageGenerator on the configured model and retry policy; ``offline=True``
    takes the offline sketch model even with a key."""

    def __init__(
        self,
        model: ImageModelAdapter | None = None,
        *,
        retry: RetryPolicy | None = None,
        offline: bool | None = None,
    ) -> None:
        from sketchgen.bootstrap import build_image_model
        from sketchgen.settings import get_settings

        settings = get_settings()
        super().__init__(
            model if model is not None else build_image_model(settings, offline=offline),
            retry=retry or RetryPolicy(max_attempts=settings.max_attempts),
        )


class StyleRegistry(_registry.StyleRegistry):
    """The library's StyleRegistry on ``SKETCHGEN_STYLES_DIR`` when it is set."""

    def __init__(self, root: Path | str | None = None) -> None:
        if root is None:
            from sketchgen.settings import get_settings

            root = get_settings().styles_dir
        super().__init__(root)
