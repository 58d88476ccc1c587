"""A few gRPC channels behind one ``grpc.Channel``, so one client carries many listeners.

A gRPC channel is one HTTP/2 connection, and Firestore's front ends let a connection carry
about 100 concurrent streams; a listener (``on_snapshot``: the ``Listen`` bidi stream) holds
one for as long as it is open. An instance streaming more jobs than that on one channel has
its further listeners queue behind the open ones. :class:`ChannelPool` is a ``grpc.Channel``
the Firestore transport accepts as its channel: every streaming call goes to the channel with
the fewest open streams (counted until the call ends), every unary call to the next channel in
turn. The channels are separate connections (a local subchannel pool each: gRPC otherwise
shares one connection among channels to the same target with the same options).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from typing import Any

import grpc

__all__ = ["ChannelPool"]

ChannelFactory = Callable[[Sequence[tuple[str, Any]]], grpc.Channel]


class ChannelPool(grpc.Channel):  # type: ignore[misc]  # grpc has no type stubs
    """``size`` channels from ``make(options)``, used as one."""

    def __init__(self, make: ChannelFactory, size: int) -> None:
        if size < 1:
            raise ValueError("a channel pool needs at least one channel")
        self.channels = [make([("grpc.use_local_subchannel_pool", 1)]) for _ in range(size)]
        self.open_streams = [0] * size
        self._lock = threading.Lock()
        self._turn = itertools.count()

    # -- choosing a channel ------------------------------------------------------------------

    def _next(self) -> int:
        return next(self._turn) % len(self.channels)

    def _least_busy(self) -> int:
        with self._lock:
            index = min(range(len(self.channels)), key=self.open_streams.__getitem__)
            self.open_streams[index] += 1
        return index

    def _ended(self, index: int) -> None:
        with self._lock:
            self.open_streams[index] -= 1

    # -- grpc.Channel ------------------------------------------------------------------------

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _RoundRobin(self, [c.unary_unary(method, *args, **kwargs) for c in self.channels])

    def stream_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _RoundRobin(self, [c.stream_unary(method, *args, **kwargs) for c in self.channels])

    def unary_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _Streaming(self, [c.unary_stream(method, *args, **kwargs) for c in self.channels])

    def stream_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _Streaming(self, [c.stream_stream(method, *args, **kwargs) for c in self.channels])

    def subscribe(self, callback: Callable[..., None], try_to_connect: bool = False) -> None:
        for channel in self.channels:
            channel.subscribe(callback, try_to_connect)

    def unsubscribe(self, callback: Callable[..., None]) -> None:
        for channel in self.channels:
            channel.unsubscribe(callback)

    def close(self) -> None:
        for channel in self.channels:
            channel.close()

    def __enter__(self) -> ChannelPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _RoundRobin:
    """A unary multicallable: each call (and ``with_call``/``future``) on the next channel."""

    def __init__(self, pool: ChannelPool, callables: list[Any]) -> None:
        self._pool = pool
        self._callables = callables

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._callables[self._pool._next()](*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._callables[self._pool._next()], name)


class _Streaming:
    """A streaming multicallable: each call on the channel with the fewest open streams."""

    def __init__(self, pool: ChannelPool, callables: list[Any]) -> None:
        self._pool = pool
        self._callables = callables

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        index = self._pool._least_busy()
        try:
            call = self._callables[index](*args, **kwargs)
        except BaseException:
            self._pool._ended(index)
            raise
        # Runs once when the stream ends however it ends (done, cancelled, failed), or at
        # once if it already has.
        if not call.add_callback(lambda: self._pool._ended(index)):
            self._pool._ended(index)
        return call
