"""Pluggable text embeddings for reference retrieval.

The default is a feature-hashing bag of words and character trigrams: no model to download,
microseconds per text, and good enough to match "golf mascot" to a reference tagged
``golf, mascot``. Anything with an ``embed`` method returning non-negative vectors plugs in.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from typing import Protocol

__all__ = ["Embedding", "HashingTextEmbedding", "cosine"]

_WORD = re.compile(r"[^\W_]+", re.UNICODE)


class Embedding(Protocol):
    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text. Non-negative components keep cosine scores in [0, 1]."""
        ...


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return 0.0 if norm == 0 else max(0.0, min(1.0, dot / norm))


class HashingTextEmbedding:
    """Also the offline :class:`~sketchgen.ports.TextEmbedder`: documents and queries are
    embedded alike, and :attr:`model` names the hashing and its size."""

    def __init__(self, dimensions: int = 512) -> None:
        self.dimensions = dimensions

    @property
    def model(self) -> str:
        return f"hashing-v1@{self.dimensions}"

    def _bucket(self, feature: str) -> int:
        digest = hashlib.blake2b(feature.encode(), digest_size=4).digest()
        return int.from_bytes(digest, "big") % self.dimensions

    def embed(self, texts: Sequence[str], *, task: str = "document") -> list[list[float]]:
        vectors = []
        for text in texts:
            vector = [0.0] * self.dimensions
            for word in _WORD.findall(text.lower()):
                # Whole words dominate; trigrams let "golfer" still meet "golf".
                vector[self._bucket("w:" + word)] += 1.0
                padded = f" {word} "
                for i in range(len(padded) - 2):
                    vector[self._bucket("t:" + padded[i : i + 3])] += 0.25
            vectors.append(vector)
        return vectors
