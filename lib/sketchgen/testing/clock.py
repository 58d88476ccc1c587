"""``FakeClock``: time that tests and ``bench/`` advance (:class:`sketchgen.ports.Clock`).

``sleep`` advances the clock at once instead of waiting, so code that waits out a lease, a
quota window or a deadline runs in microseconds. Several threads may share one (``advance`` is
atomic); a thread that sleeps moves every thread's time on, as a simulation does.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

__all__ = ["FakeClock"]

_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


class FakeClock:
    def __init__(self, start: datetime = _EPOCH) -> None:
        self._start = start
        self._elapsed = 0.0
        self._changed = threading.Condition()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self._elapsed)

    def time(self) -> float:
        """Epoch seconds (what the quota gate's schedule is kept in)."""
        return self.now().timestamp()

    def monotonic(self) -> float:
        return self._elapsed

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        if seconds <= 0:
            return
        with self._changed:
            self._elapsed += seconds
            self._changed.notify_all()

    def set(self, when: datetime) -> None:
        """Jump to ``when`` (never backwards)."""
        self.advance((when - self.now()).total_seconds())
