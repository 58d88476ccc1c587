"""``GeminiImageDescriber``: a reference image described in words by a Gemini text model, for
uploads that come without a description (so retrieval by meaning has something to embed).
SDK errors become :mod:`sketchgen.errors`; the caller decides what a failure means."""

from __future__ import annotations

import threading
from typing import Any

from sketchgen.errors import ModelRequestError
from sketchgen.references.gemini_embedding import _translate

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
    ) -> None:
        self._api_key = api_key
        self.model = model
        self._base_url = base_url
        self._timeout_s = timeout_s
        self._client_instance = client
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never show the key
        return f"GeminiImageDescriber(model={self.model!r})"

    @property
    def client(self) -> Any:
        if self._client_instance is None:
            with self._lock:
                if self._client_instance is None:
                    from google import genai
                    from google.genai import types

                    self._client_instance = genai.Client(
                        api_key=self._api_key,
                        http_options=types.HttpOptions(
                            base_url=self._base_url,
                            timeout=int(self._timeout_s * 1000),
                            retry_options=types.HttpRetryOptions(attempts=1),
                        ),
                    )
        return self._client_instance

    def describe(self, png: bytes) -> str:
        from google.genai import types

        try:
            response = self.client.models.generate_content(
                model=self.model,
                contents=[types.Part.from_bytes(data=png, mime_type="image/png"), DESCRIBE_PROMPT],
            )
        except Exception as error:  # the SDK's and httpx's, translated here
            raise _translate(error, self.model) from error
        text = " ".join((response.text or "").split())
        if not text:
            raise ModelRequestError(f"{self.model} gave no description")
        return text[:_MAX_CHARS]
