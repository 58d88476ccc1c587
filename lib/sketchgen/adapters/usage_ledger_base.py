"""What every usage ledger shares: the :class:`~sketchgen.spend.UsageLedger` port's methods
over one atomic read-modify-write of a user's usage (the rules are :mod:`sketchgen.spend`'s
pure transitions), and the sharded variant (:mod:`sketchgen.usage_shards`, ADR 0051) that
Firestore and the in-memory ledger use. Adapter-side template bases, not ports
(docs/decisions/0063)."""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from sketchgen.clock import SYSTEM_CLOCK
from sketchgen.errors import StorageError
from sketchgen.ports import Clock
from sketchgen.spend import (
    Account,
    Limits,
    Reservation,
    UsageDoc,
    extra_call_transition,
    refund_calls_transition,
    reserve_transition,
    settle_transition,
    utc_day,
)
from sketchgen.usage_shards import USAGE_SHARDS, UsageShard, combine, plan_writes

__all__ = ["ShardedUsageLedger", "TransactionalUsageLedger"]

T = TypeVar("T")


class TransactionalUsageLedger(ABC):
    """A :class:`~sketchgen.spend.UsageLedger` over one atomic read-modify-write per user: a
    store provides ``_update``, ``_admit`` and the reads; the rules of
    :mod:`sketchgen.spend` then hold the same everywhere."""

    @abstractmethod
    def _update(
        self,
        uid: str,
        transition: Callable[[UsageDoc], tuple[UsageDoc | None, T]],
        limits: Limits | None = None,
    ) -> T:
        """Atomically: read the user's usage, apply ``transition``, write what it returns.
        ``limits``: the ones ``transition`` holds the usage to (None: it never adds usage);
        a sharded ledger holds each shard to its part of them."""

    @abstractmethod
    def _admit(
        self,
        uid: str,
        transition: Callable[[Account, UsageDoc], tuple[UsageDoc | None, T]],
        limits: Callable[[Account], Limits],
    ) -> T:
        """Atomically: read the user's account and usage (in one round trip where the store
        allows), apply ``transition``, write the usage it returns. The account is only read;
        ``limits`` are the ones ``transition`` holds the usage to, for that account."""

    @abstractmethod
    def usage(self, uid: str) -> UsageDoc: ...

    @abstractmethod
    def account(self, uid: str) -> Account: ...

    @abstractmethod
    def set_account(self, uid: str, account: Account) -> None: ...

    def reserve(
        self,
        uid: str,
        job_id: str,
        images: int,
        limits: Limits,
        *,
        counts_active: bool = True,
        now: datetime | None = None,
    ) -> Reservation:
        at = now or datetime.now(UTC)
        return self._update(
            uid,
            lambda doc: reserve_transition(
                doc, job_id, images, limits, at, counts_active=counts_active
            ),
            limits,
        )

    def admit(
        self,
        uid: str,
        transition: Callable[[Account, UsageDoc], tuple[UsageDoc | None, T]],
        *,
        limits: Callable[[Account], Limits],
    ) -> T:
        """Decide on the user's account and usage together, and write the usage (a submission:
        plan and limits from the account, the reservation in the usage). ``limits``: the
        account's limits, the ones ``transition`` holds the usage to."""
        return self._admit(uid, transition, limits)

    def forget(self, uid: str, *, now: datetime | None = None) -> None:
        """Drop the user's history (unsettled job charges, past days) but keep today's
        counters: a user who deletes their data does not get the day's budget back."""
        today = utc_day(now or datetime.now(UTC))
        self._update(uid, lambda doc: (doc.on(today).model_copy(update={"jobs": {}}), None))

    def refund_calls(
        self,
        uid: str,
        calls: Mapping[str, int],
        cost_usd: float,
        *,
        uploads: int = 0,
        now: datetime | None = None,
    ) -> None:
        at = now or datetime.now(UTC)
        self._update(
            uid, lambda doc: refund_calls_transition(doc, calls, cost_usd, at, uploads=uploads)
        )

    def extra_call(
        self, uid: str, job_id: str, limits: Limits, *, now: datetime | None = None
    ) -> bool:
        at = now or datetime.now(UTC)
        return self._update(uid, lambda doc: extra_call_transition(doc, job_id, limits, at), limits)

    def settle(
        self, uid: str, job_id: str, *, refunded: int, cost_usd: float, now: datetime | None = None
    ) -> bool:
        at = now or datetime.now(UTC)
        return self._update(uid, lambda doc: settle_transition(doc, job_id, refunded, cost_usd, at))


class ShardedUsageLedger(TransactionalUsageLedger):
    """A usage ledger over :data:`USAGE_SHARDS` documents per user. A store provides one
    read of the account and every shard (with a version of each) and one atomic commit of
    several shards, each only if its version is still the one read."""

    shards = USAGE_SHARDS
    attempts = 50

    def __init__(self, *, clock: Clock = SYSTEM_CLOCK, rng: random.Random | None = None) -> None:
        self.clock = clock
        self._rng = rng or random.Random()

    @abstractmethod
    def _read(
        self, uid: str, *, account: bool
    ) -> tuple[Account | None, list[tuple[UsageShard | None, Any]]]:
        """The account (when asked) and each shard with its version, in one round trip."""

    @abstractmethod
    def _commit(self, uid: str, writes: dict[int, tuple[UsageShard, Any]]) -> bool:
        """Write every shard atomically if each is still at the version read (a version of
        None: still absent); False, nothing written, if one changed or the store refused
        the write for contention."""

    def _apply(
        self,
        uid: str,
        transition: Callable[[Account, UsageDoc], tuple[UsageDoc | None, T]],
        limits: Callable[[Account], Limits] | None,
        *,
        reads_account: bool,
    ) -> T:
        avoid: set[int] = set()
        for attempt in range(self.attempts):
            account, read = self._read(uid, account=reads_account)
            shards = [shard for shard, _ in read]
            who = account or Account()
            changed, result = transition(who, combine(shards))
            if changed is None:
                return result
            writes = plan_writes(
                shards, changed, limits(who) if limits else None, self._rng, frozenset(avoid)
            )
            if writes is not None:
                if self._commit(uid, {i: (shard, read[i][1]) for i, shard in writes.items()}):
                    return result
                avoid |= set(writes)  # lost a race there: try the other shards first
            # Up to ~1 s apart, as optimistic_update: a refused shard takes a write a second.
            self.clock.sleep(self._rng.uniform(0, 0.01 * 2 ** min(attempt, 7)))
        raise StorageError(f"the usage of {uid} is too contended to update, retry")

    def _update(
        self,
        uid: str,
        transition: Callable[[UsageDoc], tuple[UsageDoc | None, T]],
        limits: Limits | None = None,
    ) -> T:
        return self._apply(
            uid,
            lambda _account, usage: transition(usage),
            (lambda _account: limits) if limits is not None else None,
            reads_account=False,
        )

    def _admit(
        self,
        uid: str,
        transition: Callable[[Account, UsageDoc], tuple[UsageDoc | None, T]],
        limits: Callable[[Account], Limits],
    ) -> T:
        return self._apply(uid, transition, limits, reads_account=True)

    def usage(self, uid: str) -> UsageDoc:
        _, read = self._read(uid, account=False)
        return combine([shard for shard, _ in read])
