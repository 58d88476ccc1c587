"""``FirestoreDeploymentCeiling``: the day's ceiling as shard documents
``spend_ceiling/{day}/shards/{i}`` (docs/decisions/0021).

Each charge is one optimistic write to one random shard (an ``update_time`` precondition,
:func:`~sketchgen.adapters.gcp._firestore.optimistic_update`); a full shard is only read. The
day's documents carry ``expire_at`` (two days on) for a TTL policy to remove them.
``firestore.rules``: no client reads or writes them.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sketchgen.adapters.ceiling_base import TransactionalDeploymentCeiling
from sketchgen.adapters.gcp._firestore import client_for, optimistic_update
from sketchgen.ceiling import ShardDoc
from sketchgen.errors import StorageError

__all__ = ["FirestoreDeploymentCeiling"]


class FirestoreDeploymentCeiling(TransactionalDeploymentCeiling):
    def __init__(
        self,
        ceiling_usd: float,
        client: Any | None = None,
        *,
        project: str | None = None,
        database: str = "(default)",
        collection: str = "spend_ceiling",
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(ceiling_usd, rng=rng)
        self._client = client
        self._project = project
        self._database = database
        self.collection = collection

    @property
    def client(self) -> Any:
        return self._client or client_for(self._project, self._database)

    def _shards_of(self, day: str) -> Any:
        return self.client.collection(self.collection).document(day).collection("shards")

    def _update_shard(
        self, day: str, shard: int, transition: Callable[[ShardDoc], tuple[ShardDoc | None, bool]]
    ) -> bool:
        expire_at = datetime.combine(
            date.fromisoformat(day) + timedelta(days=2), datetime.min.time(), UTC
        )

        def transform(doc: dict[str, Any] | None) -> tuple[dict[str, Any] | None, bool]:
            changed, result = transition(ShardDoc.from_doc(day, doc))
            if changed is None:
                return None, result
            return {**changed.to_doc(), "expire_at": expire_at}, result

        ref = self._shards_of(day).document(str(shard))
        return optimistic_update(self.client, ref, transform, what=f"spend ceiling shard {shard}")

    def _read_shards(self, day: str) -> list[ShardDoc]:
        from google.api_core import exceptions

        try:
            snapshots = list(self._shards_of(day).stream())
        except exceptions.GoogleAPICallError as error:
            raise StorageError(f"firestore: {error.message}") from error
        return [ShardDoc.from_doc(day, s.to_dict()) for s in snapshots]
