"""Gemini through google-genai: the one client holder (:class:`GeminiClient`), the one error
translation (:func:`translate_error`) and the adapters that use them — the image model
(:class:`NanoBananaAdapter`), the reference describer and the text embedder.

Nothing outside this package imports the SDK (the local Gemini REST server in
:mod:`sketchgen.testing` speaks the protocol, not the SDK).
"""

from __future__ import annotations

from sketchgen.adapters.gemini._client import GeminiClient
from sketchgen.adapters.gemini._errors import translate_error
from sketchgen.adapters.gemini.describer import DESCRIBE_PROMPT, GeminiImageDescriber
from sketchgen.adapters.gemini.embedder import GEMINI_EMBEDDING_MODEL, GeminiTextEmbedder
from sketchgen.adapters.gemini.image_model import NanaBananaAdapter, NanoBananaAdapter

__all__ = [
    "DESCRIBE_PROMPT",
    "GEMINI_EMBEDDING_MODEL",
    "GeminiClient",
    "GeminiImageDescriber",
    "GeminiTextEmbedder",
    "NanaBananaAdapter",
    "NanoBananaAdapter",
    "translate_error",
]
