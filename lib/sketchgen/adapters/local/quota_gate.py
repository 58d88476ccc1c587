"""``MemoryQuotaGate``: the model's quota shared by the workers of one process.

The local service runs every worker in one process (``InlineTaskQueue``), so a lock over
dicts is the whole shared state. It keeps the same shards and presence as the Firestore gate
(ADR 0050), so the rules and their tests are the same. Across processes use
``FirestoreQuotaGate``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sketchgen.adapters.quota_gate_base import TransactionalQuotaGate
from sketchgen.quota import QuotaPolicy, QuotaState

__all__ = ["MemoryQuotaGate"]

T = TypeVar("T")


class MemoryQuotaGate(TransactionalQuotaGate):
    def __init__(self, policy: QuotaPolicy, **kwargs: Any) -> None:
        super().__init__(policy, **kwargs)
        self.shard_states: dict[tuple[str, int], QuotaState] = {}
        self._asked: dict[str, dict[str, float]] = {}
        self._lock = threading.Lock()

    def _read(self, key: str, shards: Sequence[int]) -> list[QuotaState]:
        with self._lock:
            return [self.shard_states.get((key, n), QuotaState()) for n in shards]

    def _update(
        self, key: str, shard: int, transition: Callable[[QuotaState], tuple[QuotaState | None, T]]
    ) -> T:
        with self._lock:
            changed, result = transition(self.shard_states.get((key, shard), QuotaState()))
            if changed is not None:
                self.shard_states[(key, shard)] = changed
            return result

    def _touch(self, key: str, user: str, at: float) -> None:
        with self._lock:
            self._asked.setdefault(key, {})[user] = at

    def _count_active(self, key: str, since: float) -> int:
        with self._lock:
            return sum(at >= since for at in self._asked.get(key, {}).values())
