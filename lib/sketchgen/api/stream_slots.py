"""Open event streams per user, in one instance (``SKETCHGEN_USER_STREAMS``).

An open stream holds a connection and a share of its job's listener for as long as the client
stays (a thread too, on a WSGI server); without a cap one account could hold every slot of an
instance. The count is per instance, in memory:
a stream lives and dies with its instance, so no shared state is needed (and none could be
released reliably when an instance is killed).

The stream route takes a slot before it answers and hands the body to :meth:`hold`, which
gives the slot back when the response is closed (client gone, stream ended), exactly once,
whether a WSGI server iterates it or the ASGI stream function async-iterates it.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from typing import TypeVar

from sketchgen.errors import LimitError

__all__ = ["StreamSlots"]

T = TypeVar("T")
_RETRY_AFTER_S = 5


class StreamSlots:
    def __init__(self, per_user: int) -> None:
        self.per_user = per_user
        self._open: dict[str, int] = {}
        self._lock = threading.Lock()

    def open_streams(self, uid: str) -> int:
        with self._lock:
            return self._open.get(uid, 0)

    def acquire(self, uid: str) -> None:
        """Take one of ``uid``'s slots, or :class:`LimitError` ``too_many_streams``."""
        with self._lock:
            held = self._open.get(uid, 0)
            if held >= self.per_user:
                raise LimitError(
                    "too_many_streams",
                    f"you have {held} event streams open here, the limit is {self.per_user}; "
                    "close one (or read the job with GET /v1/jobs/{id})",
                    field="streams",
                    retry_after_s=_RETRY_AFTER_S,
                )
            self._open[uid] = held + 1

    def release(self, uid: str) -> None:
        with self._lock:
            held = self._open.get(uid, 0) - 1
            if held > 0:
                self._open[uid] = held
            else:
                self._open.pop(uid, None)

    def hold(
        self, uid: str, body: Iterable[T], *, on_close: Callable[[], None] | None = None
    ) -> _Held[T]:
        """``body``, giving ``uid``'s slot back when it is closed or runs out (once); then
        ``on_close`` (the stream's span ends)."""
        return _Held(self, uid, body, on_close)


class _Held(Iterator[T]):
    """The body with ``close()``: WSGI servers call it when the client goes, even if the body
    was never started (a generator's ``finally`` would not run then). Async iteration (the
    ASGI stream function) goes straight to the body's own ``__aiter__``, so an open stream
    stays a task on the loop, not a thread, and gives the slot back when it ends, fails or
    is cancelled (the client went away)."""

    def __init__(
        self,
        slots: StreamSlots,
        uid: str,
        body: Iterable[T],
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self._slots, self._uid = slots, uid
        self._on_close = on_close
        self._source = body
        self._body: Iterator[T] | None = None  # made on first use: one side iterates
        self._released = False
        self._lock = threading.Lock()

    def __next__(self) -> T:
        try:
            if self._body is None:
                self._body = iter(self._source)
            return next(self._body)
        except BaseException:
            self.close()
            raise

    def __aiter__(self) -> AsyncIterator[T]:
        if not isinstance(self._source, AsyncIterable):
            raise TypeError(f"{type(self._source).__name__} cannot be async-iterated")
        return self._aiterate(self._source)

    async def _aiterate(self, source: AsyncIterable[T]) -> AsyncIterator[T]:
        try:
            async for chunk in source:
                yield chunk
        finally:
            self.close()

    def close(self) -> None:
        with self._lock:
            if self._released:
                return
            self._released = True
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._slots.release(self._uid)
            if self._on_close is not None:
                self._on_close()
