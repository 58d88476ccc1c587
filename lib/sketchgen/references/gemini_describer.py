"""Former home of :class:`~sketchgen.adapters.gemini.GeminiImageDescriber` (ADR 0043)."""

from __future__ import annotations

from sketchgen.adapters.gemini.describer import DESCRIBE_PROMPT, GeminiImageDescriber

__all__ = ["DESCRIBE_PROMPT", "GeminiImageDescriber"]
