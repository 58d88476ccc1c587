"""``wait_until``: the one place tests poll something that cannot tell them it changed.

Use it only for what offers no event or callback: a separate process (a server coming up,
a file a CLI writes, an emulator-backed job seen over HTTP), a browser page whose CSP refuses
Playwright's ``wait_for_function``. In-process code is awaited on its own signals
(``threading.Event``, ``FakeGeminiServer.wait_for_calls``, the job store's ``watch_job``) or
driven by a :class:`sketchgen.testing.clock.FakeClock`.

The interval only sets how soon a change is noticed; the timeout is a ceiling for a failure
report, never the thing the test waits for.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["wait_until", "wait_until_async"]

T = TypeVar("T")


def wait_until(
    check: Callable[[], T | None], what: str, *, timeout_s: float = 30.0, interval_s: float = 0.05
) -> T:
    """Call ``check`` until it returns something truthy and return that; fail the test with
    ``what`` if ``timeout_s`` passes first."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} (waited {timeout_s:g} s; last saw {value!r})")
        time.sleep(interval_s)


async def wait_until_async(
    check: Callable[[], Awaitable[T | None]],
    what: str,
    *,
    timeout_s: float = 30.0,
    interval_s: float = 0.02,
) -> T:
    """:func:`wait_until` inside an event loop, for a coroutine function ``check``: the loop
    keeps serving the other tasks (the server under test among them) between checks."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} (waited {timeout_s:g} s; last saw {value!r})")
        await asyncio.sleep(interval_s)
