"""What the Firestore adapters share: one client per database, and optimistic updates.

``optimistic_update``: read, transform, write back only if nobody wrote in between.
Optimistic (an ``update_time`` precondition) rather than a transaction: the documents this
serves (a job, a model's quota) are written by many workers within the same second, and
transactions on a hot document wait on each other's locks (seconds each on the emulator),
where a failed precondition costs a re-read of a few milliseconds.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any, TypeVar

from sketchgen.clock import SYSTEM_CLOCK
from sketchgen.errors import StorageError
from sketchgen.ports import Clock

__all__ = [
    "client_for",
    "connect",
    "optimistic_update",
    "optimistic_update_reading",
    "use_channels",
]

T = TypeVar("T")
Doc = dict[str, Any]


_channels = 1  # connections per client, set by the composition root (use_channels)


def use_channels(channels: int) -> None:
    """How many connections the process's clients spread their calls over (at instance start,
    before any client is made; bootstrap sets it from ``SKETCHGEN_FIRESTORE_CHANNELS``).

    More than 1 (:class:`~sketchgen.adapters.gcp._channel_pool.ChannelPool`): more listeners
    can be open at once than one connection carries (about 100): the stream function."""
    global _channels
    if channels < 1:
        raise ValueError("channels must be at least 1")
    _channels = channels


def client_for(project: str | None, database: str) -> Any:
    """The process's client for a database, shared by every adapter (the job store and the
    quota gate hold one channel, or one pool of them). An emulator address is part of what a
    client is bound to."""
    return _client(project, database, os.environ.get("FIRESTORE_EMULATOR_HOST"), _channels)


def clients_made() -> int:
    """How many Firestore clients this process has made (one per database and emulator)."""
    return _client.cache_info().currsize


def forget_clients() -> None:
    """Drop the process's clients, so the next :func:`client_for` makes a new one (between
    environments in one test process)."""
    _client.cache_clear()


@cache
def _client(project: str | None, database: str, emulator: str | None, channels: int) -> Any:
    from google.cloud import firestore

    client = firestore.Client(project=project, database=database)
    if channels > 1:
        _use_channel_pool(client, channels)
    return client


def _use_channel_pool(client: Any, size: int) -> None:
    """Give ``client`` a pool of channels where it would make one.

    The SDK makes its one channel when first used (``_firestore_api_helper``, with keepalive
    and message-size options, or an insecure channel to an emulator); this makes the pool with
    the same options and hands the SDK the transport built on it, before its first use.
    """
    import grpc
    from google.cloud.firestore_v1 import base_client
    from google.cloud.firestore_v1.services.firestore import client as gapic
    from google.cloud.firestore_v1.services.firestore.transports.grpc import (
        FirestoreGrpcTransport,
    )

    from sketchgen.adapters.gcp._channel_pool import ChannelPool

    emulator = client._emulator_host
    if emulator is not None:
        # As the SDK's own emulator channel: the "owner" token is the emulator's admin.
        base = [("Authorization", "Bearer owner"), *base_client._GRPC_MSG_SIZE_OPTIONS]

        def make(options: Any) -> grpc.Channel:
            return grpc.insecure_channel(emulator, options=[*base, *options])

    else:

        def make(options: Any) -> grpc.Channel:
            return FirestoreGrpcTransport.create_channel(
                client._target,
                credentials=client._credentials,
                options=[*base_client._DEFAULT_CHANNEL_OPTIONS, *options],
            )

    transport = FirestoreGrpcTransport(host=client._target, channel=ChannelPool(make, size))
    client._transport = transport
    client._firestore_api_internal = gapic.FirestoreClient(
        transport=transport, client_options=client._client_options
    )
    gapic._client_info = client._client_info  # type: ignore[attr-defined]  # as the SDK does


def connect(client: Any, timeout_s: float = 10.0) -> None:
    """Open the client's connections and make one read, so a request finds them ready (at
    instance start: the channel, its connection and the first call's setup are not paid by
    the first request). The read is of a document nothing writes."""
    import grpc

    from sketchgen.adapters.gcp._channel_pool import ChannelPool

    channel = client._firestore_api._transport.grpc_channel
    for each in channel.channels if isinstance(channel, ChannelPool) else [channel]:
        grpc.channel_ready_future(each).result(timeout=timeout_s)
    client.collection("sketchgen-start-up").document("probe").get(timeout=timeout_s)


def optimistic_update(
    client: Any,
    ref: Any,
    transform: Callable[[Doc | None], tuple[Doc | None, T]],
    *,
    what: str,
    attempts: int = 50,
    clock: Clock = SYSTEM_CLOCK,
) -> T:
    """Apply ``transform`` (document or None → new document or None for no change, result)."""
    return optimistic_update_reading(
        client, ref, (), lambda doc, _: transform(doc), what=what, attempts=attempts, clock=clock
    )


def optimistic_update_reading(
    client: Any,
    ref: Any,
    others: Sequence[Any],
    transform: Callable[[Doc | None, list[Doc | None]], tuple[Doc | None, T]],
    *,
    what: str,
    attempts: int = 50,
    clock: Clock = SYSTEM_CLOCK,
) -> T:
    """:func:`optimistic_update` that also reads ``others`` (never written) in the same round
    trip (``get_all``); ``transform`` gets them, in order, after the document."""
    from google.api_core import exceptions

    rng = random.Random()
    for attempt in range(attempts):
        try:
            if others:
                by_path = {s.reference.path: s for s in client.get_all([ref, *others])}
                snapshot = by_path[ref.path]
                extra = [_doc(by_path[o.path]) for o in others]
            else:
                snapshot, extra = ref.get(), []
            changed, result = transform(_doc(snapshot), extra)
            if changed is None:
                return result
            if snapshot.exists:
                guard = client.write_option(last_update_time=snapshot.update_time)
                ref.update(changed, option=guard)
            else:
                ref.create(changed)  # fails if another writer created it first
            return result
        except (exceptions.FailedPrecondition, exceptions.Aborted, exceptions.Conflict):
            # Up to ~1 s apart: a document refused for contention takes a write a second.
            clock.sleep(rng.uniform(0, 0.01 * 2 ** min(attempt, 7)))
        except exceptions.GoogleAPICallError as error:
            raise StorageError(f"firestore: {error.message}") from error
    raise StorageError(f"firestore: {what} is too contended to update, retry")


def _doc(snapshot: Any) -> Doc | None:
    return snapshot.to_dict() if snapshot.exists else None
