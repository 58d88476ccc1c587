"""Styles: the built-in ones (read-only, bundled) and the ones users own.

Every read is scoped to the owner: another user's style is reported exactly like a missing
one (404), for the style, its references and a job that names it. A job sees either kind as a
:class:`~sketchgen.schemas.Style`; a user style's references come from the reference index
(by meaning), a built-in style's from :class:`~sketchgen.references.ImageRetriever`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePath

from sketchgen.errors import (
    LimitError,
    ModelError,
    NotFoundError,
    ReadOnlyStyleError,
    StorageError,
)
from sketchgen.layout import style_prefix, style_reference_key
from sketchgen.logs import get_logger
from sketchgen.ports import BlobStore, ImageDescriber, ReferenceIndex, StyleStore, TextEmbedder
from sketchgen.pricing import CallKind
from sketchgen.references import TOP_K, ImageRetriever
from sketchgen.schemas import PromptSpec, ReferenceImage, RetrievalResult, ScoredReference, Style
from sketchgen.services.spending import SpendControl
from sketchgen.styles import StyleRegistry
from sketchgen.styles.owned import (
    MAX_DESCRIPTION_CHARS,
    ReferenceDoc,
    ReferencePatch,
    StyleDoc,
    StyleDraft,
    StylePatch,
    as_style,
    is_sha256,
    is_user_style_id,
    new_style_id,
)
from sketchgen.styles.upload import MAX_UPLOAD_BYTES, MAX_UPLOAD_PIXELS, normalise_reference
from sketchgen.text import clean_text

__all__ = ["OwnedStyle", "StyleLimits", "StyleService"]

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class StyleLimits:
    max_styles_per_user: int = 50
    max_references_per_style: int = 200
    # Uploads a user a UTC day, deleted ones included: deleting and adding again cannot get
    # round the per-style cap or the paid calls each upload makes.
    max_reference_uploads_per_day: int = 200
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    max_upload_pixels: int = MAX_UPLOAD_PIXELS


@dataclass(frozen=True, slots=True)
class OwnedStyle:
    doc: StyleDoc
    references: list[ReferenceDoc]

    @property
    def style(self) -> Style:
        return as_style(self.doc, self.references)


class StyleService:
    def __init__(
        self,
        *,
        builtins: StyleRegistry,
        store: StyleStore,
        index: ReferenceIndex,
        embedder: TextEmbedder,
        blobs: BlobStore,
        retriever: ImageRetriever | None = None,
        limits: StyleLimits | None = None,
        describer: ImageDescriber | None = None,
        spend: SpendControl | None = None,
    ) -> None:
        self.builtins = builtins
        self.store = store
        self.index = index
        self.embedder = embedder
        self.blobs = blobs
        self.retriever = retriever or ImageRetriever()
        self.limits = limits or StyleLimits()
        # Writes a description for uploads that have none (Gemini, when configured).
        self.describer = describer
        # Every describer and embedder call a user causes is charged to their day before it
        # is sent (docs/decisions/0020); None: not metered (the library, or a service built
        # without a style store).
        self.spend = spend

    # -- what jobs use -------------------------------------------------------------------

    def resolve(self, owner_uid: str, style_id: str) -> Style:
        """The style a job of ``owner_uid`` may use, built-in or their own."""
        if is_user_style_id(style_id):
            return self.owned(owner_uid, style_id).style
        return self.builtins.get_style(style_id)

    def retrieve(
        self,
        prompt_spec: PromptSpec,
        style: Style,
        *,
        top_k: int = TOP_K,
        owner_uid: str | None = None,
    ) -> RetrievalResult:
        """The style's references for the brief; a user style's by meaning, which embeds the
        brief: a paid call, charged to ``owner_uid`` before it is sent."""
        if not is_user_style_id(style.id):
            return self.retriever.retrieve(prompt_spec, style, top_k=top_k)
        if owner_uid is not None:
            self._charge(owner_uid, {"embed": [self.embedder.model]}, field="style_id")
        query = " ".join((prompt_spec.subject, *prompt_spec.keywords))
        try:
            vector = self.embedder.embed([query], task="query")[0]
        except ModelError as error:
            raise StorageError(f"embedding the brief failed: {error}") from error
        by_sha = {r.sha256: r for r in style.references}
        neighbours = self.index.nearest(style.id, vector, model=self.embedder.model, top_k=top_k)
        items = tuple(
            ScoredReference(reference=by_sha[n.sha256], score=max(0.0, min(1.0, n.score)))
            for n in neighbours
            if n.sha256 in by_sha and n.sha256 not in style.do_not_use
        )
        return RetrievalResult(style_id=style.id, items=items)

    # -- styles --------------------------------------------------------------------------

    def builtin_styles(self) -> list[Style]:
        return self.builtins.list_styles()

    def own_styles(self, owner_uid: str) -> list[StyleDoc]:
        return self.store.list_styles(owner_uid)

    def owned(self, owner_uid: str, style_id: str) -> OwnedStyle:
        """The caller's own style with its references; anyone else's is not found."""
        doc = self.store.get_style(style_id) if is_user_style_id(style_id) else None
        if doc is None or doc.owner_uid != owner_uid:
            if not is_user_style_id(style_id) and style_id in self.builtins.style_ids():
                raise ReadOnlyStyleError(f"style {style_id!r} is built in and read-only")
            raise _no_style(style_id)
        return OwnedStyle(doc, self.store.list_references(style_id))

    def create_style(self, owner_uid: str, draft: StyleDraft) -> StyleDoc:
        doc = StyleDoc(style_id=new_style_id(), owner_uid=owner_uid, **draft.model_dump())
        # The cap is checked in the transaction that creates it: two at once cannot pass it.
        self.store.create_style(doc, limit=self.limits.max_styles_per_user)
        return doc

    def update_style(self, owner_uid: str, style_id: str, patch: StylePatch) -> StyleDoc:
        current = self.owned(owner_uid, style_id).doc
        changes = {k: v for k, v in patch.model_dump().items() if v is not None}
        doc = current.model_copy(update={**changes, "updated_at": _now()})
        self.store.put_style(doc)
        return doc

    def delete_style(self, owner_uid: str, style_id: str) -> None:
        self.owned(owner_uid, style_id)
        self.store.delete_style(style_id)
        # The images go with it (a user's deletion is a deletion): a job drawn from them
        # keeps its sketches, but can no longer be refined from those references.
        self.blobs.delete_under(style_prefix(style_id))

    def delete_owner_styles(self, owner_uid: str) -> list[str]:
        """Every style of ``owner_uid`` with its references and their images."""
        deleted = []
        for doc in self.store.list_styles(owner_uid):
            self.store.delete_style(doc.style_id)
            self.blobs.delete_under(style_prefix(doc.style_id))
            deleted.append(doc.style_id)
        return deleted

    # -- references ----------------------------------------------------------------------

    def add_reference(
        self, owner_uid: str, style_id: str, data: bytes, *, tags: tuple[str, ...], description: str
    ) -> tuple[ReferenceDoc, bool]:
        """Store an uploaded image once (by the digest of its normalised PNG). Returns
        ``(reference, created)``; the same image again is not stored twice."""
        owned = self.owned(owner_uid, style_id)
        image = normalise_reference(
            data, max_bytes=self.limits.max_upload_bytes, max_pixels=self.limits.max_upload_pixels
        )
        existing = next((r for r in owned.references if r.sha256 == image.sha256), None)
        if existing is not None:
            return existing, False
        if len(owned.references) >= self.limits.max_references_per_style:
            raise LimitError(
                "limit_exceeded",
                f"at most {self.limits.max_references_per_style} references a style",
                field="references",
            )
        description = clean_text(
            description, field="description", max_chars=MAX_DESCRIPTION_CHARS, allow_empty=True
        )
        calls: dict[CallKind, list[str]] = {"embed": [self.embedder.model]}
        if not description and self.describer is not None:  # _describe will call it
            calls["describe"] = [self.describer.model]
        self._charge(
            owner_uid,
            calls,
            uploads=1,
            max_uploads=self.limits.max_reference_uploads_per_day,
        )
        description = description or self._describe(image.png)
        reference = self._embedded(
            ReferenceDoc(
                sha256=image.sha256,
                tags=tags,
                description=description,
                width=image.width,
                height=image.height,
            )
        )
        key = style_reference_key(style_id, image.sha256)
        self.blobs.put(key, image.png, "image/png")  # first: a stored reference has its image
        try:
            created = self.store.add_reference(
                style_id, reference, limit=self.limits.max_references_per_style
            )
        except (LimitError, NotFoundError):
            # Another upload took the last place (or the style went): this image is nobody's.
            self.blobs.delete(key)
            raise
        if not created:  # the same image, uploaded twice at once: one reference
            stored = self.store.get_reference(style_id, image.sha256)
            return (stored or reference), False
        return reference, True

    def update_reference(
        self, owner_uid: str, style_id: str, sha256: str, patch: ReferencePatch
    ) -> ReferenceDoc:
        owned = self.owned(owner_uid, style_id)
        current = self._reference(owned, sha256)
        changes = {k: v for k, v in patch.model_dump().items() if v is not None}
        reference = current.model_copy(update=changes)
        if reference.text() != current.text():
            self._charge(owner_uid, {"embed": [self.embedder.model]}, field="description")
            reference = self._embedded(reference)
        self.store.put_reference(style_id, reference)
        self._bump(owned.doc)
        return reference

    def delete_reference(self, owner_uid: str, style_id: str, sha256: str) -> None:
        owned = self.owned(owner_uid, style_id)
        self._reference(owned, sha256)
        self.store.delete_reference(style_id, sha256)
        self.blobs.delete(style_reference_key(style_id, sha256))
        self._bump(owned.doc)

    def reference_image(self, owner_uid: str | None, style_id: str, sha256: str) -> ReferenceImage:
        """A reference's image as a job would use it: a built-in's for anyone, a user
        style's for its owner only."""
        if not is_user_style_id(style_id):
            style = self.builtins.get_style(style_id)
            found = [r for r in style.references if r.sha256 == sha256]
        else:
            if owner_uid is None:
                raise _no_style(style_id)
            found = [
                r for r in self.owned(owner_uid, style_id).style.references if r.sha256 == sha256
            ]
        if not found:
            raise NotFoundError(f"no reference {sha256!r} in style {style_id!r}")
        return found[0]

    def reference_bytes(self, reference: ReferenceImage) -> bytes:
        """A built-in's file, or a user style's blob (its path is the relative blob key)."""
        if not PurePath(reference.path).is_absolute():
            return self.blobs.get(reference.path)
        return self.builtins.reference_bytes(reference)

    # -- upkeep --------------------------------------------------------------------------

    def reembed(self, *, limit: int = 500) -> int:
        """Embed references whose vector is missing or from another model (a change of
        model, or an upload whose embedding failed). Returns how many were embedded."""
        stale = self.store.references_not_embedded_by(self.embedder.model, limit=limit)
        if not stale:
            return 0
        vectors = self.embedder.embed([r.text() for _, r in stale], task="document")
        touched: set[str] = set()
        for (style_id, reference), vector in zip(stale, vectors, strict=True):
            update = {"embedding": tuple(vector), "embedding_model": self.embedder.model}
            self.store.put_reference(style_id, reference.model_copy(update=update))
            touched.add(style_id)
        for style_id in touched:
            doc = self.store.get_style(style_id)
            if doc is not None:
                self._bump(doc)
        log.info("re-embedded %d references with %s", len(stale), self.embedder.model)
        return len(stale)

    # -- helpers -------------------------------------------------------------------------

    def _charge(
        self,
        owner_uid: str,
        calls: dict[CallKind, list[str]],
        *,
        uploads: int = 0,
        max_uploads: int | None = None,
        field: str = "image",
    ) -> None:
        if self.spend is not None:
            self.spend.charge_calls(
                owner_uid, calls, uploads=uploads, max_uploads=max_uploads, field=field
            )

    def _describe(self, png: bytes) -> str:
        if self.describer is None:
            return ""
        try:
            return self.describer.describe(png)
        except ModelError as error:
            # Tags alone still embed; the upload is not refused over a missing sentence.
            log.warning("no description written for an upload: %s", error)
            return ""

    def _embedded(self, reference: ReferenceDoc) -> ReferenceDoc:
        try:
            vector = self.embedder.embed([reference.text()], task="document")[0]
        except ModelError as error:
            # Stored without a vector: the upkeep embeds it (reembed), retrieval skips it.
            log.warning("reference %s not embedded yet: %s", reference.sha256[:12], error)
            return reference.model_copy(update={"embedding": None, "embedding_model": None})
        return reference.model_copy(
            update={"embedding": tuple(vector), "embedding_model": self.embedder.model}
        )

    @staticmethod
    def _reference(owned: OwnedStyle, sha256: str) -> ReferenceDoc:
        found = next((r for r in owned.references if r.sha256 == sha256), None)
        if not is_sha256(sha256) or found is None:
            raise NotFoundError(f"no reference {sha256!r} in style {owned.doc.style_id!r}")
        return found

    def _bump(self, doc: StyleDoc) -> None:
        current = self.store.get_style(doc.style_id) or doc
        self.store.put_style(
            current.model_copy(update={"revision": current.revision + 1, "updated_at": _now()})
        )


def _no_style(style_id: str) -> NotFoundError:
    # Missing and someone else's read the same, down to the field named.
    error = NotFoundError(f"no style {style_id!r}")
    error.field = "style_id"
    return error


def _now() -> datetime:
    return datetime.now(UTC)
