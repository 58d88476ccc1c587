"""How long sketchgen waits before it asks the model again.

429 (after the server's RetryInfo delay when it gives one), 500, 503 and timeouts arrive as
:class:`TransientModelError` and are retried with exponential backoff and full jitter;
anything else is final. The SDK's own retry is switched off so the two never stack. The one
place that applies this policy is a sketch's drawing (``generate.pipeline``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from sketchgen.errors import TransientModelError

__all__ = ["RetryPolicy"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 4
    initial_delay_s: float = 0.5
    max_delay_s: float = 30.0
    multiplier: float = 2.0

    def delay(self, attempt: int, error: TransientModelError, rng: random.Random) -> float:
        """Seconds to wait after failed ``attempt`` (1-based)."""
        if error.retry_after is not None:
            # The server knows its quota window: wait what it says, plus a little spread so
            # the sketches of one job do not all come back in the same instant.
            return min(self.max_delay_s, error.retry_after) + rng.uniform(0, 0.1)
        ceiling = min(self.max_delay_s, self.initial_delay_s * self.multiplier ** (attempt - 1))
        return rng.uniform(ceiling / 2, ceiling)
