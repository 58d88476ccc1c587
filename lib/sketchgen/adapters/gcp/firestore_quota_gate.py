"""``FirestoreQuotaGate``: the model's quota shared by every worker instance.

The schedule of :mod:`sketchgen.quota` is split over shard documents
(``quota/{model}/shards/{n}``), each granting at most 0.8 slots a second at the configured
RPM, so no document is hot (ADR 0050). Who asked lately lives in
``quota/{model}/users/{user_key}`` (written at most once per third of the waiting ttl, by
whichever instance finds it stale) and is counted with one query a second per instance.
Clients cannot read or write any of it (``firestore.rules`` denies everything but a job's
owner reading the job).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sketchgen.adapters.gcp._firestore import client_for, optimistic_update
from sketchgen.adapters.quota_gate_base import TransactionalQuotaGate
from sketchgen.errors import StorageError
from sketchgen.quota import QuotaPolicy, QuotaState

__all__ = ["FirestoreQuotaGate"]

T = TypeVar("T")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


class FirestoreQuotaGate(TransactionalQuotaGate):
    def __init__(
        self,
        policy: QuotaPolicy,
        client: Any | None = None,
        *,
        project: str | None = None,
        database: str = "(default)",
        collection: str = "quota",
        **kwargs: Any,
    ) -> None:
        super().__init__(policy, **kwargs)
        self._client = client
        self._project = project
        self._database = database
        self.collection = collection

    @property
    def client(self) -> Any:
        return self._client or client_for(self._project, self._database)

    def _model(self, key: str) -> Any:
        return self.client.collection(self.collection).document(_UNSAFE.sub("_", key))

    def _ref(self, key: str, shard: int) -> Any:
        return self._model(key).collection("shards").document(str(shard))

    def _read(self, key: str, shards: Sequence[int]) -> list[QuotaState]:
        from google.api_core import exceptions

        refs = [self._ref(key, n) for n in shards]
        try:
            by_path = {s.reference.path: s for s in self.client.get_all(refs)}
        except exceptions.GoogleAPICallError as error:
            raise StorageError(f"firestore: {error.message}") from error
        snapshots = [by_path.get(ref.path) for ref in refs]
        return [QuotaState.from_doc(s.to_dict() if s and s.exists else None) for s in snapshots]

    def _update(
        self, key: str, shard: int, transition: Callable[[QuotaState], tuple[QuotaState | None, T]]
    ) -> T:
        def transform(doc: dict[str, Any] | None) -> tuple[dict[str, Any] | None, T]:
            changed, result = transition(QuotaState.from_doc(doc))
            return (changed.to_doc() if changed is not None else None), result

        # Few attempts: a contended shard is left for another (the gate tries the next one).
        return optimistic_update(
            self.client, self._ref(key, shard), transform, what=f"quota {key}/{shard}",
            attempts=3, clock=self.clock,
        )  # fmt: skip

    def _touch(self, key: str, user: str, at: float) -> None:
        # Written only when the stored mark is a third of the ttl old: however many instances
        # serve a user, its presence document takes at most one write per ttl / 3.
        fresh_after = at - self.policy.waiting_ttl_s / 3

        def transform(doc: dict[str, Any] | None) -> tuple[dict[str, Any] | None, None]:
            if doc is not None and float(doc.get("at", 0.0)) > fresh_after:
                return None, None
            return {"at": at}, None

        ref = self._model(key).collection("users").document(user)
        optimistic_update(
            self.client, ref, transform, what=f"quota {key} presence", attempts=3,
            clock=self.clock,
        )  # fmt: skip

    def _count_active(self, key: str, since: float) -> int:
        from google.cloud.firestore_v1.base_query import FieldFilter

        users = self._model(key).collection("users")
        return sum(1 for _ in users.where(filter=FieldFilter("at", ">=", since)).stream())

    def shard_states(self, key: str) -> list[QuotaState]:
        """Every stored shard of the schedule (for inspection and tests)."""
        return self._read(key, range(self.policy.shards))
