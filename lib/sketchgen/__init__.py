"""sketchgen: rough black-and-white concept sketches from a brief, on Gemini image models.

The heavy parts (the SDK, numpy) load only when used, so ``import sketchgen`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["__version__", "finish_sketch"]
__version__ = "0.1.0"

if TYPE_CHECKING:
    from sketchgen.finish import finish_sketch


def __getattr__(name: str) -> Any:
    if name == "finish_sketch":
        from sketchgen.finish import finish_sketch

        return finish_sketch
    raise AttributeError(f"module 'sketchgen' has no attribute {name!r}")
