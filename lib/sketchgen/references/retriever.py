"""Pick the reference images a sketch is drawn from.

Order matters: the style filter and ``do_not_use`` removal happen before ranking, so a
banned image can never take one of the top-k places.
"""

from __future__ import annotations

from pathlib import PurePath

from sketchgen.errors import ConfigError, InputError
from sketchgen.references.embedding import Embedding, HashingTextEmbedding, cosine
from sketchgen.schemas import PromptSpec, ReferenceImage, RetrievalResult, ScoredReference, Style

__all__ = ["ImageRetriever"]


def _is_banned(reference: ReferenceImage, do_not_use: frozenset[str]) -> bool:
    path = PurePath(reference.path)
    names = {reference.sha256, path.name, f"{path.parent.name}/{path.name}"}
    return not names.isdisjoint(do_not_use)


def _describe(reference: ReferenceImage) -> str:
    return " ".join((*reference.tags, reference.description, PurePath(reference.path).stem))


# How many of a style's references a job is planned with (the model takes them as images).
TOP_K = 3


class ImageRetriever:
    def __init__(self, embedding: Embedding | None = None) -> None:
        self.embedding = embedding or HashingTextEmbedding()

    def retrieve(
        self, prompt_spec: PromptSpec, style: Style, top_k: int = TOP_K
    ) -> RetrievalResult:
        if prompt_spec.style_id != style.id:
            raise InputError(
                f"prompt was compiled for style {prompt_spec.style_id!r}, not {style.id!r}",
                field="style_id",
            )
        if not isinstance(top_k, int) or top_k < 0:
            raise ConfigError("top_k must be a non-negative integer", field="top_k")
        banned = frozenset(style.do_not_use)
        unique: dict[str, ReferenceImage] = {}
        for reference in style.references:
            if not _is_banned(reference, banned):
                unique.setdefault(reference.sha256, reference)
        candidates = list(unique.values())
        if not candidates or top_k == 0:
            return RetrievalResult(style_id=style.id)
        query = " ".join((prompt_spec.subject, *prompt_spec.keywords))
        vectors = self.embedding.embed([query, *(_describe(r) for r in candidates)])
        scored = [
            ScoredReference(reference=r, score=round(cosine(vectors[0], v), 6))
            for r, v in zip(candidates, vectors[1:], strict=True)
        ]
        # Ties go to the path so the same brief always gets the same references.
        scored.sort(key=lambda s: (-s.score, s.reference.path))
        return RetrievalResult(style_id=style.id, items=tuple(scored[:top_k]))
