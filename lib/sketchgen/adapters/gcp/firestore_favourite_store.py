"""``FirestoreFavouriteStore``: ``users/{uid}/favourites/{job_id}_{index}`` (issue 27).

One small document per star, under its owner: each is written once per click, so no
document comes near Firestore's one write a second; a user's list is one query on their own
subcollection ordered by ``created_at`` (a single-field index, automatic)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sketchgen.adapters.gcp._firestore import client_for
from sketchgen.errors import StorageError
from sketchgen.ports import Favourite

__all__ = ["FirestoreFavouriteStore"]

T = TypeVar("T")


class FirestoreFavouriteStore:
    def __init__(
        self, client: Any | None = None, *, project: str | None = None, database: str = "(default)"
    ) -> None:
        self._client = client
        self._project = project
        self._database = database

    @property
    def client(self) -> Any:
        return self._client or client_for(self._project, self._database)

    def _mine(self, owner_uid: str) -> Any:
        return self.client.collection("users").document(owner_uid).collection("favourites")

    @staticmethod
    def _call(body: Callable[[], T]) -> T:
        from google.api_core import exceptions

        try:
            return body()
        except exceptions.GoogleAPICallError as error:
            raise StorageError(f"firestore: {error.message}") from error

    def put_favourite(self, favourite: Favourite) -> None:
        from google.api_core import exceptions

        ref = self._mine(favourite.owner_uid).document(f"{favourite.job_id}_{favourite.index}")
        doc = {
            "job_id": favourite.job_id,
            "index": favourite.index,
            "created_at": favourite.created_at,
        }
        try:
            ref.create(doc)
        except exceptions.AlreadyExists:
            return  # starred already: the first time is kept
        except exceptions.GoogleAPICallError as error:
            raise StorageError(f"firestore: {error.message}") from error

    def delete_favourite(self, owner_uid: str, job_id: str, index: int) -> None:
        self._call(lambda: self._mine(owner_uid).document(f"{job_id}_{index}").delete())

    def list_favourites(
        self, owner_uid: str, *, limit: int, before: Favourite | None = None
    ) -> list[Favourite]:
        from google.cloud import firestore

        query = (
            self._mine(owner_uid)
            .order_by("created_at", direction=firestore.Query.DESCENDING)
            .order_by("__name__", direction=firestore.Query.DESCENDING)
        )
        if before is not None:
            name = self._mine(owner_uid).document(f"{before.job_id}_{before.index}")
            query = query.start_after({"created_at": before.created_at, "__name__": name})
        snapshots = self._call(lambda: list(query.limit(limit).stream()))
        return [
            Favourite(owner_uid, s.get("job_id"), int(s.get("index")), s.get("created_at"))
            for s in snapshots
        ]

    def favourite_indices(self, owner_uid: str, job_id: str) -> set[int]:
        from google.cloud import firestore

        query = self._mine(owner_uid).where(filter=firestore.FieldFilter("job_id", "==", job_id))
        return {int(s.get("index")) for s in self._call(lambda: list(query.stream()))}

    def delete_job_favourites(self, owner_uid: str, job_id: str) -> None:
        from google.cloud import firestore

        query = self._mine(owner_uid).where(filter=firestore.FieldFilter("job_id", "==", job_id))
        for snapshot in self._call(lambda: list(query.stream())):
            self._call(snapshot.reference.delete)
