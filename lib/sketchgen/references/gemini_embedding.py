"""Former home of :class:`~sketchgen.adapters.gemini.GeminiTextEmbedder` (ADR 0043)."""

from __future__ import annotations

from sketchgen.adapters.gemini.embedder import GEMINI_EMBEDDING_MODEL, GeminiTextEmbedder

__all__ = ["GEMINI_EMBEDDING_MODEL", "GeminiTextEmbedder"]
