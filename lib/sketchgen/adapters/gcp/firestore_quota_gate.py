"""``FirestoreQuotaGate``: the model's quota shared by every worker instance.

One document per model (``quota/{model}``) holds the schedule of :mod:`sketchgen.quota`;
each slot handed out is one optimistic write to it. Clients cannot read or write it
(``firestore.rules`` denies everything but a job's owner reading the job).

One document sustains a few writes a second before contention costs retries; that covers a
quota of a few hundred requests a minute, which is where Gemini image models' tiers sit.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from sketchgen.adapters.gcp._firestore import client_for, optimistic_update
from sketchgen.quota import QuotaGate, QuotaPolicy, QuotaState

__all__ = ["FirestoreQuotaGate"]

T = TypeVar("T")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


class FirestoreQuotaGate(QuotaGate):
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

    def _ref(self, key: str) -> Any:
        return self.client.collection(self.collection).document(_UNSAFE.sub("_", key))

    def _update(
        self, key: str, transition: Callable[[QuotaState], tuple[QuotaState | None, T]]
    ) -> T:
        def transform(doc: dict[str, Any] | None) -> tuple[dict[str, Any] | None, T]:
            changed, result = transition(QuotaState.from_doc(doc))
            return (changed.to_doc() if changed is not None else None), result

        return optimistic_update(self.client, self._ref(key), transform, what=f"quota {key}")

    def state(self, key: str) -> QuotaState:
        """The stored schedule (for inspection and tests)."""
        snapshot = self._ref(key).get()
        return QuotaState.from_doc(snapshot.to_dict() if snapshot.exists else None)
