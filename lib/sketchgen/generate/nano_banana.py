"""The seed's module path for the Gemini image model, kept as a documented alias.

The adapter lives in :mod:`sketchgen.adapters.gemini` (ADR 0043);
``from sketchgen.generate.nano_banana import NanoBananaAdapter`` (and the seed's spelling
``NanaBananaAdapter``) still work and name the same class.
"""

from __future__ import annotations

from sketchgen.adapters.gemini.image_model import NanaBananaAdapter, NanoBananaAdapter

__all__ = ["NanaBananaAdapter", "NanoBananaAdapter"]
