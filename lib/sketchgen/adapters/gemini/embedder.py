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
from collections.abc import Sequence
from typing import Any

from sketchgen.adapters.gemini._client import GeminiClient
from sketchgen.adapters.gemini._errors import translate_error
from sketchgen.errors import ModelRequestError
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
        gemini: GeminiClient | None = None,
    ) -> None:
        self._model = model
        self.dimensions = dimensions
        self.gemini = gemini or GeminiClient(
            api_key, base_url=base_url, timeout_s=timeout_s, client=client
        )

    def __repr__(self) -> str:  # never show the key
        return f"GeminiTextEmbedder(model={self._model!r}, dimensions={self.dimensions})"

    @property
    def model(self) -> str:
        """What a stored vector records: the model and the size it was cut to."""
        return f"{self._model}@{self.dimensions}"

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
                response = self.gemini.sync.models.embed_content(
                    model=self._model, contents=chunk, config=config
                )
            except Exception as error:  # the SDK's and httpx's, translated here
                raise translate_error(
                    error, self._model, label=f"embeddings {self._model}: ", client=self.gemini
                ) from error
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
