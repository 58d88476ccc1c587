"""``GeminiImageDescriber``: a reference image described in words by a Gemini text model, for
uploads that come without a description (so retrieval by meaning has something to embed).
SDK errors become :mod:`sketchgen.errors`; the caller decides what a failure means."""

from __future__ import annotations

from typing import Any

from sketchgen.adapters.gemini._client import GeminiClient
from sketchgen.adapters.gemini._errors import translate_error
from sketchgen.errors import ModelRequestError

__all__ = ["DESCRIBE_PROMPT", "GeminiImageDescriber"]

DESCRIBE_PROMPT = (
    "This is a reference image for concept sketches. In one sentence of at most 30 words, "
    "say what it shows: the subject, its pose or action, and the composition. No preamble."
)
_MAX_CHARS = 500


class GeminiImageDescriber:
    def __init__(
        self,
        api_key: str | None,
        *,
        model: str = "gemini-2.5-flash",
        base_url: str | None = None,
        timeout_s: float = 30.0,
        client: Any | None = None,
        gemini: GeminiClient | None = None,
    ) -> None:
        self.model = model
        self.gemini = gemini or GeminiClient(
            api_key, base_url=base_url, timeout_s=timeout_s, client=client
        )

    def __repr__(self) -> str:  # never show the key
        return f"GeminiImageDescriber(model={self.model!r})"

    def describe(self, png: bytes) -> str:
        from google.genai import types

        try:
            response = self.gemini.sync.models.generate_content(
                model=self.model,
                contents=[types.Part.from_bytes(data=png, mime_type="image/png"), DESCRIBE_PROMPT],
            )
        except Exception as error:  # the SDK's and httpx's, translated here
            raise translate_error(
                error, self.model, label=f"describe {self.model}: ", client=self.gemini
            ) from error
        text = " ".join((response.text or "").split())
        if not text:
            raise ModelRequestError(f"{self.model} gave no description")
        return text[:_MAX_CHARS]
