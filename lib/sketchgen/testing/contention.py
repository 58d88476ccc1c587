"""Firestore's per-document write limit, as a model tests and ``bench/`` run against.

A Firestore document sustains about one write a second; past a short burst, commits that
write it fail with ABORTED ("too much contention"). The emulators do not model this, so a
design that writes one hot document passes every emulator test and fails in the cloud.

:class:`ContentionModel` is a token bucket per document (``rate`` writes a second, ``burst``
at once) on a :class:`~sketchgen.ports.Clock`. A commit is admitted only if every document it
writes has a token; a refused commit writes nothing and takes no token (an admitted one that
then fails a precondition has taken its tokens: it held the documents all the same). It also
keeps the log of the writes that landed (:meth:`ContentionModel.written`), so a test can count
writes per document in any window.
:mod:`sketchgen.testing.firestore_proxy` puts it in front of the Firestore emulator.
"""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sketchgen.clock import SYSTEM_CLOCK
from sketchgen.ports import Clock

__all__ = ["ABORTED_MESSAGE", "ContentionModel", "WriteCounts", "document_kind"]

ABORTED_MESSAGE = "Too much contention on these documents. Please try again."


@dataclass(frozen=True, slots=True)
class WriteCounts:
    """Admitted writes of one document: in all, and the most in any 1 s and 10 s window."""

    total: int
    max_1s: int
    max_10s: int


def document_kind(path: str) -> str:
    """``jobs/{id}/sketches/{n}`` → ``jobs/*/sketches/*``: writes grouped by what they are."""
    parts = path.split("/documents/", 1)[-1].split("/")
    return "/".join(p if i % 2 == 0 else "*" for i, p in enumerate(parts))


def _max_in_window(times: Sequence[float], window_s: float) -> int:
    best, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= window_s:
            start += 1
        best = max(best, end - start + 1)
    return best


class ContentionModel:
    def __init__(
        self,
        clock: Clock = SYSTEM_CLOCK,
        *,
        rate: float = 1.0,
        burst: float = 3.0,
        enforce: bool = True,
    ) -> None:
        self.clock = clock
        self.rate = rate
        self.burst = burst
        self.enforce = enforce  # False: count only
        self.refused = 0
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[float, float]] = {}  # document → (tokens, at)
        self._writes: dict[str, list[float]] = defaultdict(list)  # each in time order

    def _available(self, document: str, now: float) -> float:
        tokens, at = self._tokens.get(document, (self.burst, now))
        return min(self.burst, tokens + (now - at) * self.rate)

    def admit(self, documents: Iterable[str]) -> bool:
        """Take one token from each document a commit writes; False (nothing taken) if any
        has none left: the commit must fail with ABORTED."""
        wanted = set(documents)
        with self._lock:
            now = self.clock.monotonic()
            available = {d: self._available(d, now) for d in wanted}
            if self.enforce and any(tokens < 1.0 for tokens in available.values()):
                self.refused += 1
                return False
            for document, tokens in available.items():
                self._tokens[document] = (tokens - 1.0, now)
            return True

    def written(self, documents: Iterable[str], *, admitted_at: float | None = None) -> None:
        """An admitted commit landed: count its writes, at ``admitted_at`` (when its tokens
        were taken: the counts and the bucket then read the same instants; a commit the
        emulator answers late on a busy machine does not crowd a window it was not admitted
        in), else now."""
        with self._lock:
            at = self.clock.monotonic() if admitted_at is None else admitted_at
            for document in set(documents):
                bisect.insort(self._writes[document], at)

    def writes(self) -> dict[str, list[float]]:
        """Every document written, with when each of its landed writes was admitted."""
        with self._lock:
            return {d: list(times) for d, times in self._writes.items()}

    def counts(self) -> dict[str, WriteCounts]:
        """Every document written, with the writes that landed."""
        logs = self.writes()
        return {
            d: WriteCounts(len(t), _max_in_window(t, 1.0), _max_in_window(t, 10.0))
            for d, t in logs.items()
        }

    def by_kind(self) -> dict[str, WriteCounts]:
        """The worst document of each kind (:func:`document_kind`)."""
        worst: dict[str, WriteCounts] = {}
        for document, counts in self.counts().items():
            kind = document_kind(document)
            seen = worst.get(kind)
            worst[kind] = WriteCounts(
                max(counts.total, seen.total if seen else 0),
                max(counts.max_1s, seen.max_1s if seen else 0),
                max(counts.max_10s, seen.max_10s if seen else 0),
            )
        return worst

    def reset(self) -> None:
        with self._lock:
            self._tokens.clear()
            self._writes.clear()
            self.refused = 0
