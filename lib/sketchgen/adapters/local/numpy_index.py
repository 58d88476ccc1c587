"""``NumpyReferenceIndex``: the reference index over a style store, ranked with numpy.

Per style it keeps the usable vectors of the current model as one normalised matrix, rebuilt
when the style's ``revision`` moves (every change to its references bumps it), so a query is
one matrix-vector product.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from sketchgen.ports import Neighbour, StyleStore

__all__ = ["NumpyReferenceIndex"]

_Matrix = npt.NDArray[np.float32]


class NumpyReferenceIndex:
    def __init__(self, store: StyleStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], tuple[int, list[str], _Matrix]] = {}

    def nearest(
        self, style_id: str, query: Sequence[float], *, model: str, top_k: int
    ) -> list[Neighbour]:
        style = self.store.get_style(style_id)
        if style is None or top_k <= 0:
            return []
        shas, matrix = self._matrix(style_id, model, style.revision)
        if not shas:
            return []
        q = np.asarray(query, dtype=np.float32)
        norm = float(np.linalg.norm(q))
        if norm == 0 or q.shape[0] != matrix.shape[1]:
            return []
        # einsum, not `@`: a matrix-vector product through BLAS fans out to threads, and on a
        # busy machine waiting for them costs more than the arithmetic (bench_retrieval).
        scores = np.einsum("ij,j->i", matrix, q / norm)
        k = min(top_k, len(shas))
        top = np.argpartition(-scores, k - 1)[:k]
        # Ties go to the digest, so the same brief always gets the same references.
        ranked = sorted(top.tolist(), key=lambda i: (-float(scores[i]), shas[i]))
        return [Neighbour(shas[i], round(float(scores[i]), 6)) for i in ranked]

    def _matrix(self, style_id: str, model: str, revision: int) -> tuple[list[str], _Matrix]:
        key = (style_id, model)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and cached[0] == revision:
                return cached[1], cached[2]
        usable = [
            r
            for r in self.store.list_references(style_id)
            if not r.do_not_use and r.embedding is not None and r.embedding_model == model
        ]
        shas = [r.sha256 for r in usable]
        if usable:
            matrix = np.asarray([r.embedding for r in usable], dtype=np.float32)
            norms = np.linalg.norm(matrix, axis=1, keepdims=True)
            matrix = (matrix / np.where(norms == 0, 1, norms)).astype(np.float32)
        else:
            matrix = np.zeros((0, 0), dtype=np.float32)
        with self._lock:
            self._cache[key] = (revision, shas, matrix)
        return shas, matrix
