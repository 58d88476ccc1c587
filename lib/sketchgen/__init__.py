"""sketchgen: rough black-and-white concept sketches from a brief, on Gemini image models.

One line::

    import sketchgen
    result = sketchgen.make_sketches("playful golf mascot", style="loose-ink-mascot", n=4)
    print(result.images, result.timestamp)

Step by step, the same job: ``StyleRegistry().get_style`` → ``PromptCompiler().compile`` →
``ImageRetriever().retrieve`` → ``ImageGenerator().generate(config=GenerationConfig(...))``.

``sketchgen.generate`` is the package of the seed's layout (``from sketchgen.generate import
ImageGenerator``), and ``sketchgen.make_sketches`` the one-line job: two names for two
things (ADR 0044). The classes are the same objects wherever they are imported from; what
they use when not told (model, model name, styles folder) comes from the settings through
the defaults installed below (:mod:`sketchgen.defaults`).

Everything heavy (pydantic, Pillow, numpy, the Gemini SDK) loads on first use, so
``import sketchgen`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sketchgen import _front, defaults
from sketchgen._version import __version__
from sketchgen.errors import (
    ConfigError,
    ConflictError,
    InputError,
    ModelError,
    ModelNotFoundError,
    ModelRequestError,
    NoImageError,
    NotFoundError,
    OffStyleError,
    SketchgenError,
    StorageError,
    StyleDefinitionError,
    TransientModelError,
    UnknownStyleError,
)

if TYPE_CHECKING:
    from sketchgen.finish import finish_sketch
    from sketchgen.generate.config import GenerationConfig
    from sketchgen.generate.generator import GenerationResult, ImageGenerator
    from sketchgen.prompt import PromptCompiler
    from sketchgen.references import ImageRetriever
    from sketchgen.styles import StyleRegistry

__all__ = [
    "ConfigError",
    "ConflictError",
    "GenerationConfig",
    "GenerationResult",
    "ImageGenerator",
    "ImageRetriever",
    "InputError",
    "ModelError",
    "ModelNotFoundError",
    "ModelRequestError",
    "NoImageError",
    "NotFoundError",
    "OffStyleError",
    "PromptCompiler",
    "SketchgenError",
    "StorageError",
    "StyleDefinitionError",
    "StyleRegistry",
    "TransientModelError",
    "UnknownStyleError",
    "__version__",
    "finish_sketch",
    "make_sketches",
]


# The library's defaults come from the settings (read lazily, at first use).
defaults.use_defaults(_front.ConfiguredDefaults())
make_sketches = _front.make_sketches

_LAZY = {
    "GenerationConfig": "sketchgen.generate.config",
    "ImageGenerator": "sketchgen.generate.generator",
    "StyleRegistry": "sketchgen.styles",
    "GenerationResult": "sketchgen.generate.generator",
    "ImageRetriever": "sketchgen.references",
    "PromptCompiler": "sketchgen.prompt",
    "finish_sketch": "sketchgen.finish",
}


def __getattr__(name: str) -> Any:
    import importlib

    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name == "generate":  # the package, before anything has imported it
        return importlib.import_module("sketchgen.generate")
    raise AttributeError(f"module 'sketchgen' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
