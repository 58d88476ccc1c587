"""``GeminiTextEmbedder``: Gemini embeddings (``gemini-embedding-001``) through google-genai.

Documents (a reference's description and tags) and queries (a brief) are embedded with their
own task types, as the model is trained for retrieval that way. Vectors are cut to
``dimensions`` (Matryoshka truncation, ``output_dimensionality``) so they fit a Firestore
vector index, and normalised to unit length (the API normalises only the full 3072).
SDK errors become :mod:`sketchgen.errors` here; nothing retries here (retry lives in one
place; an upload whose embedding failed is stored and embedded by the upkeep).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import Any

from sketchgen.errors import ModelError, ModelRequestError, TransientModelError
from sketchgen.ports import EmbeddingTask

__all__ = ["GEMINI_EMBEDDING_MODEL", "GeminiTextEmbedder"]

GEMINI_EMBEDDING_MODEL = "gemini-embedding-001"
_TASK = {"document": "RETRIEVAL_DOCUMENT", "query": "RETRIEVAL_QUERY"}
_BATCH = 100  # the API's limit on texts in one batchEmbedContents


class GeminiTextEmbedder:
    def __init__(
        self,
        api_key: str | None,
        *,
        model: str = GEMINI_EMBEDDING_MODEL,
        dimensions: int = 768,
        base_url: str | None = None,
        timeout_s: float = 30.0,
        client: Any | None = None,
    ) -> None:
        self._api_key = api_key
        self._model = model
        self.dimensions = dimensions
        self._base_url = base_url
        self._timeout_s = timeout_s
        self._client_instance = client
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never show the key
        return f"GeminiTextEmbedder(model={self._model!r}, dimensions={self.dimensions})"

    @property
    def model(self) -> str:
        """What a stored vector records: the model and the size it was cut to."""
        return f"{self._model}@{self.dimensions}"

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

    def embed(self, texts: Sequence[str], *, task: EmbeddingTask = "document") -> list[list[float]]:
        from google.genai import types

        config = types.EmbedContentConfig(
            task_type=_TASK[task], output_dimensionality=self.dimensions
        )
        vectors: list[list[float]] = []
        for start in range(0, len(texts), _BATCH):
            # An empty text is refused by the API; a single space embeds as "nothing".
            chunk = [t if t.strip() else " " for t in texts[start : start + _BATCH]]
            try:
                response = self.client.models.embed_content(
                    model=self._model, contents=chunk, config=config
                )
            except Exception as error:  # the SDK's and httpx's, translated here
                raise _translate(error, self._model) from error
            embeddings = response.embeddings or []
            if len(embeddings) != len(chunk):
                raise ModelRequestError(
                    f"{self._model} returned {len(embeddings)} vectors for {len(chunk)} texts"
                )
            vectors += [_unit(list(e.values or [])) for e in embeddings]
        return vectors


def _unit(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm else vector


def _translate(error: Exception, model: str) -> ModelError:
    from google.genai import errors

    from sketchgen.generate.nano_banana import _is_transport_error

    if isinstance(error, errors.APIError):
        code = int(error.code or 0)
        message = f"embeddings {model}: {code} {error.status}: {error.message}"
        if code in {408, 429, 500, 502, 503, 504}:
            return TransientModelError(message, status=code)
        return ModelRequestError(message)
    if _is_transport_error(error):
        return TransientModelError(f"embeddings {model}: {type(error).__name__}")
    return ModelRequestError(f"embeddings {model}: unexpected {type(error).__name__}")
