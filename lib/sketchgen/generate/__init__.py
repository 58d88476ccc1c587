"""The generate API, in the original design's module layout: ``ImageGenerator`` over an
image-model adapter (the configured one when none is given), ``GenerationConfig``, and the
adapters' names (``NanoBananaAdapter``, also spelt ``NanaBananaAdapter``, lives in
:mod:`sketchgen.adapters.gemini`). A plain package; the one-line job is
``sketchgen.make_sketches`` (ADR 0044).

Everything loads on first use, so ``import sketchgen.generate`` does not pull in pydantic,
Pillow or the Gemini SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sketchgen.generate.base import ImageModelAdapter
    from sketchgen.generate.config import GenerationConfig
    from sketchgen.generate.generator import (
        AsyncSketchStream,
        GenerationResult,
        ImageGenerator,
        SketchStream,
    )
    from sketchgen.generate.nano_banana import NanaBananaAdapter, NanoBananaAdapter
    from sketchgen.generate.offline import OfflineSketchAdapter
    from sketchgen.generate.plan import Refinement
    from sketchgen.generate.refine import refine_sketch
    from sketchgen.generate.retry import RetryPolicy

__all__ = [
    "AsyncSketchStream",
    "GenerationConfig",
    "GenerationResult",
    "ImageGenerator",
    "ImageModelAdapter",
    "NanaBananaAdapter",
    "NanoBananaAdapter",
    "OfflineSketchAdapter",
    "Refinement",
    "RetryPolicy",
    "SketchStream",
    "refine_sketch",
]

_LAZY = {
    "AsyncSketchStream": "sketchgen.generate.generator",
    "GenerationConfig": "sketchgen.generate.config",
    "GenerationResult": "sketchgen.generate.generator",
    "ImageGenerator": "sketchgen.generate.generator",
    "ImageModelAdapter": "sketchgen.generate.base",
    "NanoBananaAdapter": "sketchgen.generate.nano_banana",
    "NanaBananaAdapter": "sketchgen.generate.nano_banana",
    "OfflineSketchAdapter": "sketchgen.generate.offline",
    "Refinement": "sketchgen.generate.plan",
    "RetryPolicy": "sketchgen.generate.retry",
    "SketchStream": "sketchgen.generate.generator",
    "refine_sketch": "sketchgen.generate.refine",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sketchgen.generate' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
