"""The one place sketchgen retries model calls.

429 (after the server's RetryInfo delay when it gives one), 500, 503 and timeouts arrive here
as :class:`TransientModelError` and are retried with exponential backoff and full jitter;
anything else is final. The SDK's own retry is switched off so the two never stack.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from sketchgen.errors import TransientModelError

__all__ = ["RetryPolicy", "acall_with_retry", "call_with_retry"]

T = TypeVar("T")


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


def call_with_retry(
    fn: Callable[[], T],
    policy: RetryPolicy,
    *,
    on_attempt: Callable[[int], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> T:
    """Call ``fn`` until it succeeds, fails permanently or runs out of attempts."""
    rng = rng or random.Random()
    attempt = 0
    while True:
        attempt += 1
        if on_attempt:
            on_attempt(attempt)
        try:
            return fn()
        except TransientModelError as error:
            if attempt >= policy.max_attempts:
                raise
            sleep(policy.delay(attempt, error, rng))


async def acall_with_retry(
    fn: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    on_attempt: Callable[[int], None] | None = None,
    rng: random.Random | None = None,
) -> T:
    """The async twin of :func:`call_with_retry`."""
    rng = rng or random.Random()
    attempt = 0
    while True:
        attempt += 1
        if on_attempt:
            on_attempt(attempt)
        try:
            return await fn()
        except TransientModelError as error:
            if attempt >= policy.max_attempts:
                raise
            await asyncio.sleep(policy.delay(attempt, error, rng))
