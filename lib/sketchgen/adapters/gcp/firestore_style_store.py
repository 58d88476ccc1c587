"""User styles in Firestore, and Firestore vector search over their references.

``styles/{style_id}`` holds the style (with ``owner_uid``, which the security rules check);
``styles/{style_id}/references/{sha256}`` one reference each, its vector in ``embedding``
(a Firestore ``Vector``) beside ``embedding_model``. :class:`FirestoreReferenceIndex` asks
``find_nearest`` (cosine) on the style's own subcollection, pre-filtered to
``do_not_use == false`` and the current ``embedding_model``: the composite vector index on
those fields is in Terraform (``infra/terraform/modules/firestore_styles``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

from sketchgen.adapters.gcp._firestore import client_for
from sketchgen.errors import LimitError, NotFoundError, StorageError
from sketchgen.ports import Neighbour
from sketchgen.styles.owned import ReferenceDoc, StyleDoc

__all__ = ["FirestoreReferenceIndex", "FirestoreStyleStore"]

T = TypeVar("T")
REFERENCES = "references"  # the subcollection, and the vector index's collection group
OWNERS = "style_owners"  # one per owner, written with each new style: the cap's guard
_ATTEMPTS = 50


def _guard(call: Callable[[], T]) -> T:
    from google.api_core import exceptions

    try:
        return call()
    except exceptions.GoogleAPICallError as error:
        raise StorageError(f"firestore: {error.message}") from error


def _to_doc(reference: ReferenceDoc) -> dict[str, Any]:
    from google.cloud.firestore_v1.vector import Vector

    doc = reference.model_dump(mode="python")
    doc["tags"] = list(reference.tags)
    doc["embedding"] = Vector(list(reference.embedding)) if reference.embedding else None
    return doc


def _from_doc(doc: dict[str, Any]) -> ReferenceDoc:
    vector = doc.get("embedding")
    doc = {**doc, "embedding": tuple(float(x) for x in vector) if vector is not None else None}
    return ReferenceDoc.model_validate(doc)


def _all(query: Any) -> list[Any]:
    return list(query.stream())


class _Firestore:
    def __init__(
        self,
        client: Any | None = None,
        *,
        project: str | None = None,
        database: str = "(default)",
        collection: str = "styles",
    ) -> None:
        self._client = client
        self._project = project
        self._database = database
        self.collection = collection

    @property
    def client(self) -> Any:
        return self._client or client_for(self._project, self._database)

    def _style(self, style_id: str) -> Any:
        return self.client.collection(self.collection).document(style_id)

    def _references(self, style_id: str) -> Any:
        return self._style(style_id).collection(REFERENCES)


class FirestoreStyleStore(_Firestore):
    """Caps are checked with the write, optimistically: a new style is written in one batch
    with its owner's guard document (``style_owners/{uid}``), a new reference with its
    style's document (``revision`` bumped), each under the update time read before counting.
    Whoever adds in between changes that document, so the batch fails and is counted again:
    two writers at once cannot pass a cap by one."""

    def _optimistic(self, attempt: Callable[[], T], *, what: str) -> T:
        from google.api_core import exceptions

        rng = random.Random()
        for tries in range(_ATTEMPTS):
            try:
                return attempt()
            except (exceptions.FailedPrecondition, exceptions.Aborted, exceptions.Conflict):
                time.sleep(rng.uniform(0, 0.01 * 2 ** min(tries, 6)))
            except exceptions.GoogleAPICallError as error:
                raise StorageError(f"firestore: {error.message}") from error
        raise StorageError(f"firestore: {what} is too contended to update, retry")

    def create_style(self, style: StyleDoc, *, limit: int | None = None) -> None:
        document = style.model_dump(mode="python")
        if limit is None:
            _guard(lambda: self._style(style.style_id).create(document))
            return
        from google.cloud.firestore_v1.base_query import FieldFilter

        client = self.client
        guard = client.collection(OWNERS).document(style.owner_uid)
        owned = (
            client.collection(self.collection)
            .where(filter=FieldFilter("owner_uid", "==", style.owner_uid))
            .select(["owner_uid"])
        )

        def attempt() -> None:
            seen = guard.get()  # first: whatever is added after this changes it
            count = sum(1 for _ in owned.stream())
            if count >= limit:
                raise LimitError("limit_exceeded", f"at most {limit} styles a user", field="styles")
            batch = client.batch()
            fields = {"owner_uid": style.owner_uid, "styles": count + 1, "updated_at": _now()}
            if seen.exists:
                batch.update(
                    guard, fields, option=client.write_option(last_update_time=seen.update_time)
                )
            else:
                batch.create(guard, fields)
            batch.create(self._style(style.style_id), document)
            batch.commit()

        self._optimistic(attempt, what=f"styles of {style.owner_uid}")

    def get_style(self, style_id: str) -> StyleDoc | None:
        snapshot = _guard(lambda: self._style(style_id).get())
        return StyleDoc.model_validate(snapshot.to_dict()) if snapshot.exists else None

    def list_styles(self, owner_uid: str) -> list[StyleDoc]:
        from google.cloud.firestore_v1.base_query import FieldFilter

        query = self.client.collection(self.collection).where(
            filter=FieldFilter("owner_uid", "==", owner_uid)
        )
        styles = [
            StyleDoc.model_validate(s.to_dict()) for s in _guard(lambda: list(query.stream()))
        ]
        return sorted(styles, key=lambda s: (s.created_at, s.style_id))

    def put_style(self, style: StyleDoc) -> None:
        _guard(lambda: self._style(style.style_id).set(style.model_dump(mode="python")))

    def delete_style(self, style_id: str) -> None:
        def delete() -> None:
            # A document's subcollection outlives it: delete the references first.
            for snapshot in self._references(style_id).stream():
                snapshot.reference.delete()
            self._style(style_id).delete()

        _guard(delete)

    def list_references(self, style_id: str) -> list[ReferenceDoc]:
        snapshots = _guard(lambda: list(self._references(style_id).stream()))
        return sorted((_from_doc(s.to_dict()) for s in snapshots), key=lambda r: r.sha256)

    def get_reference(self, style_id: str, sha256: str) -> ReferenceDoc | None:
        snapshot = _guard(lambda: self._references(style_id).document(sha256).get())
        return _from_doc(snapshot.to_dict()) if snapshot.exists else None

    def put_reference(self, style_id: str, reference: ReferenceDoc) -> None:
        ref = self._references(style_id).document(reference.sha256)
        _guard(lambda: ref.set(_to_doc(reference)))

    def add_reference(self, style_id: str, reference: ReferenceDoc, *, limit: int) -> bool:
        client = self.client
        style_ref = self._style(style_id)
        ref = self._references(style_id).document(reference.sha256)
        listing = self._references(style_id).select(["sha256"])

        def attempt() -> bool:
            style = style_ref.get()  # first: whoever adds after this bumps it
            if not style.exists:
                raise NotFoundError(f"no style {style_id!r}")
            if ref.get().exists:
                return False
            if sum(1 for _ in listing.stream()) >= limit:
                raise LimitError(
                    "limit_exceeded", f"at most {limit} references a style", field="references"
                )
            current = StyleDoc.model_validate(style.to_dict())
            batch = client.batch()
            batch.create(ref, _to_doc(reference))  # the same image at once: one of them
            batch.update(
                style_ref,
                {"revision": current.revision + 1, "updated_at": _now()},
                option=client.write_option(last_update_time=style.update_time),
            )
            batch.commit()
            return True

        return self._optimistic(attempt, what=f"references of {style_id}")

    def delete_reference(self, style_id: str, sha256: str) -> None:
        _guard(lambda: self._references(style_id).document(sha256).delete())

    def references_not_embedded_by(
        self, model: str, *, limit: int
    ) -> list[tuple[str, ReferenceDoc]]:
        from google.cloud.firestore_v1.base_query import FieldFilter

        group = self.client.collection_group(REFERENCES)
        found: dict[str, tuple[str, ReferenceDoc]] = {}
        # != skips documents whose field is null, so the never-embedded are asked for apart.
        for clause in (
            FieldFilter("embedding_model", "==", None),
            FieldFilter("embedding_model", "!=", model),
        ):
            query = group.where(filter=clause).limit(limit)
            snapshots: list[Any] = _guard(partial(_all, query))
            for snapshot in snapshots:
                style_id = snapshot.reference.parent.parent.id
                found.setdefault(snapshot.reference.path, (style_id, _from_doc(snapshot.to_dict())))
        return list(found.values())[:limit]


def _now() -> datetime:
    return datetime.now(UTC)


class FirestoreReferenceIndex(_Firestore):
    def nearest(
        self, style_id: str, query: Sequence[float], *, model: str, top_k: int
    ) -> list[Neighbour]:
        if top_k <= 0:
            return []
        from google.cloud.firestore_v1.base_query import FieldFilter
        from google.cloud.firestore_v1.base_vector_query import DistanceMeasure
        from google.cloud.firestore_v1.vector import Vector

        search = (
            self._references(style_id)
            .where(filter=FieldFilter("do_not_use", "==", False))
            .where(filter=FieldFilter("embedding_model", "==", model))
            .find_nearest(
                vector_field="embedding",
                query_vector=Vector(list(query)),
                distance_measure=DistanceMeasure.COSINE,
                limit=min(top_k, 1000),  # find_nearest's own cap
                distance_result_field="vector_distance",
            )
        )
        snapshots = _guard(lambda: list(search.stream()))
        neighbours = [
            # Cosine distance is 1 - cosine similarity.
            Neighbour(s.id, round(1.0 - float(s.get("vector_distance")), 6))
            for s in snapshots
        ]
        return sorted(neighbours, key=lambda n: (-n.score, n.sha256))
