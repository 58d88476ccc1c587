"""sketchgen: rough black-and-white concept sketches from a brief, on Gemini image models.

One line::

    import sketchgen
    result = sketchgen.generate("playful golf mascot", style="loose-ink-mascot", n=4)
    print(result.images, result.timestamp)

Step by step, the same job: ``StyleRegistry().get_style`` → ``PromptCompiler().compile`` →
``ImageRetriever().retrieve`` → ``ImageGenerator().generate(config=GenerationConfig(...))``.

Everything heavy (pydantic, Pillow, numpy, the Gemini SDK) loads on first use, so
``import sketchgen`` stays cheap.
"""

from __future__ import annotations

import types
from typing import TYPE_CHECKING, Any

import sketchgen.generate as _generate_package
from sketchgen import _front
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
    from sketchgen._configured import GenerationConfig, ImageGenerator, StyleRegistry
    from sketchgen.finish import finish_sketch
    from sketchgen.generate.generator import GenerationResult
    from sketchgen.prompt import PromptCompiler
    from sketchgen.references import ImageRetriever

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
    "generate",
]


class _CallableGenerate(types.ModuleType):
    """``sketchgen.generate`` is the ``sketchgen.generate`` package *and* the front door.

    Python binds an imported subpackage to its parent's attribute of the same name, so a
    plain ``def generate`` here would be replaced by the package the first time anything
    imports ``sketchgen.generate.…``. Instead the package itself answers calls, and both
    ``sketchgen.generate(...)`` and ``from sketchgen.generate import GenerationConfig`` work
    in any order.
    """

    __call__ = staticmethod(_front.generate)


# The package's own __init__ is lazy (nothing heavy loads here); it becomes callable at once,
# before anyone can reach it, so there is never a non-callable ``sketchgen.generate``.
_generate_package.__class__ = _CallableGenerate
generate = _generate_package

_LAZY = {
    # The configured subclasses: defaults from the settings (see sketchgen._configured).
    "GenerationConfig": "sketchgen._configured",
    "ImageGenerator": "sketchgen._configured",
    "StyleRegistry": "sketchgen._configured",
    "GenerationResult": "sketchgen.generate.generator",
    "ImageRetriever": "sketchgen.references",
    "PromptCompiler": "sketchgen.prompt",
    "finish_sketch": "sketchgen.finish",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sketchgen' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
