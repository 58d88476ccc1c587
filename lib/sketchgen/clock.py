"""The system clock: the one real implementation of :class:`sketchgen.ports.Clock`.

Leases, deadlines, quota windows and the finaliser take a clock rather than calling
:mod:`time` or :mod:`datetime` themselves, so their tests (and ``bench/``) advance a fake one
(:class:`sketchgen.testing.clock.FakeClock`) instead of sleeping.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

__all__ = ["SYSTEM_CLOCK", "SystemClock"]


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


SYSTEM_CLOCK = SystemClock()
