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

__all__ = ["client_for", "optimistic_update", "optimistic_update_reading"]

T = TypeVar("T")
Doc = dict[str, Any]


def client_for(project: str | None, database: str) -> Any:
    """The process's client for a database, shared by every adapter (the job store and the
    quota gate hold one channel). An emulator address is part of what a client is bound to."""
    return _client(project, database, os.environ.get("FIRESTORE_EMULATOR_HOST"))


@cache
def _client(project: str | None, database: str, emulator: str | None) -> Any:
    from google.cloud import firestore

    return firestore.Client(project=project, database=database)


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
