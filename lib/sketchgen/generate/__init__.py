"""The generate API: ``ImageGenerator`` over an image-model adapter.

Adapters load lazily so importing the API does not pull in the Gemini SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sketchgen.generate.base import ImageModelAdapter
from sketchgen.generate.config import GenerationConfig
from sketchgen.generate.generator import (
    AsyncSketchStream,
    GenerationResult,
    ImageGenerator,
    SketchStream,
)
from sketchgen.generate.pipeline import Refinement
from sketchgen.generate.refine import refine_sketch
from sketchgen.generate.retry import RetryPolicy

if TYPE_CHECKING:
    from sketchgen.generate.nano_banana import NanaBananaAdapter, NanoBananaAdapter
    from sketchgen.generate.offline import OfflineSketchAdapter

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
    "NanoBananaAdapter": "sketchgen.generate.nano_banana",
    "NanaBananaAdapter": "sketchgen.generate.nano_banana",
    "OfflineSketchAdapter": "sketchgen.generate.offline",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sketchgen.generate' has no attribute {name!r}")
