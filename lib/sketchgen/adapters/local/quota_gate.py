"""``MemoryQuotaGate``: the model's quota shared by the workers of one process.

The local service runs every worker in one process (``InlineTaskQueue``), so a lock over a
dict is the whole shared state. Across processes use ``FirestoreQuotaGate``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from sketchgen.quota import QuotaGate, QuotaPolicy, QuotaState

__all__ = ["MemoryQuotaGate"]

T = TypeVar("T")


class MemoryQuotaGate(QuotaGate):
    def __init__(self, policy: QuotaPolicy, **kwargs: Any) -> None:
        super().__init__(policy, **kwargs)
        self._states: dict[str, QuotaState] = {}
        self._lock = threading.Lock()

    def _update(
        self, key: str, transition: Callable[[QuotaState], tuple[QuotaState | None, T]]
    ) -> T:
        with self._lock:
            changed, result = transition(self._states.get(key, QuotaState()))
            if changed is not None:
                self._states[key] = changed
            return result
