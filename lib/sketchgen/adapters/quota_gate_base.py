"""What every quota gate shares: the :class:`~sketchgen.quota.QuotaGate` port's waiting and
rules over a store's shard reads and atomic updates. An adapter-side template base, not a
port (docs/decisions/0063)."""

from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from functools import partial
from typing import TypeVar

from sketchgen.clock import SYSTEM_CLOCK
from sketchgen.errors import StorageError
from sketchgen.logs import get_logger
from sketchgen.ports import Clock
from sketchgen.quota import (
    Decision,
    Grant,
    QuotaPolicy,
    QuotaState,
    Wait,
    hold_transition,
    reserve_transition,
    user_key,
)

__all__ = ["TransactionalQuotaGate"]

T = TypeVar("T")
log = get_logger("sketchgen.quota")  # the gate's lines keep the name they had
_PROBES = 4  # shards read per attempt: enough to find room, few enough to read cheaply
_RACES = 3  # shards tried in one attempt when another caller took the slot first


class TransactionalQuotaGate(ABC):
    """A :class:`~sketchgen.quota.QuotaGate` over a store: admission to the model, shared by
    every worker that uses the same state.

    A gate provides storage: read shards, apply a transition to one shard atomically, record
    and count the users asking. The waiting and the rules are the same everywhere.
    """

    def __init__(
        self,
        policy: QuotaPolicy,
        *,
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
    ) -> None:
        self.policy = policy
        self.clock = clock
        self._rng = rng or random.Random()  # the shards probed, the jitter (seeded in tests)
        self._touched: dict[tuple[str, str], float] = {}  # this instance's last presence write
        self._active_cache: dict[str, tuple[float, int]] = {}

    def _now(self) -> float:
        return self.clock.now().timestamp()

    @abstractmethod
    def _read(self, key: str, shards: Sequence[int]) -> list[QuotaState]:
        """The stored states of ``shards`` of model ``key`` (empty state when absent)."""

    @abstractmethod
    def _update(
        self, key: str, shard: int, transition: Callable[[QuotaState], tuple[QuotaState | None, T]]
    ) -> T:
        """Atomically apply ``transition`` to shard ``shard`` of model ``key``."""

    @abstractmethod
    def _touch(self, key: str, user: str, at: float) -> None:
        """Record that ``user`` asked for model ``key`` at ``at`` (its own document)."""

    @abstractmethod
    def _count_active(self, key: str, since: float) -> int:
        """How many users asked for model ``key`` at or after ``since``."""

    def _active(self, key: str, user: str, now: float) -> int:
        ttl = self.policy.waiting_ttl_s
        if now - self._touched.get((key, user), -math.inf) >= ttl / 3:
            try:
                self._touch(key, user, now)
            except StorageError:  # presence only tunes the shares: never block a call on it
                log.info("quota presence of %s not recorded (contended)", user)
            self._touched[(key, user)] = now
            self._active_cache.pop(key, None)
        # One count a second per instance is plenty: shares change on the ttl's scale.
        cached = self._active_cache.get(key)
        if cached is None or now - cached[0] >= 1.0:
            cached = (now, self._count_active(key, now - ttl))
            self._active_cache[key] = cached
        return max(1, cached[1])

    def reserve(self, key: str, uid: str) -> Decision:
        """One attempt at a slot for ``uid`` (no sleeping): a grant, or how long to wait."""
        user = user_key(uid)
        now = self._now()
        active = self._active(key, user, now)
        count = self.policy.shards
        probed = self._rng.sample(range(count), min(_PROBES, count))
        states = self._read(key, probed)
        decisions = [
            (reserve_transition(s, user, now, self.policy, shard=n, active=active)[1], n)
            for n, s in zip(probed, states, strict=True)
        ]
        open_ = sorted((d.at, n) for d, n in decisions if isinstance(d, Grant))
        for _, shard in open_[:_RACES]:
            rule = partial(self._reserve_now, user=user, shard=shard, active=active)
            try:
                decision = self._update(key, shard, rule)
            except StorageError:  # that shard is contended: another has room
                continue
            if isinstance(decision, Grant):
                return decision
        waits = [d for d, _ in decisions if isinstance(d, Wait)]
        if not waits:  # every open shard was taken under us: ask again at once
            return Wait(retry_in=0.0, reason="contended")
        return min(waits, key=lambda w: w.retry_in)

    def _reserve_now(
        self, state: QuotaState, *, user: str, shard: int, active: int
    ) -> tuple[QuotaState | None, Decision]:
        """The reservation applied to the shard as read for the write, at the time of that
        read: the clock of the probes, a round trip or a lost race earlier, would record the
        grant as made then and let the shard's bucket grant the next one that much sooner
        (measured: 11 writes of one shard in 10 s on a busy machine)."""
        return reserve_transition(state, user, self._now(), self.policy, shard=shard, active=active)

    def acquire(self, key: str, uid: str, *, max_wait_s: float) -> float | None:
        """Wait for a slot to call model ``key`` for user ``uid``: its start, or None if none
        came within ``max_wait_s``.

        Returns at the slot's start. A worker turned away sleeps until the schedule can change
        for it (plus jitter, so waiting workers do not all ask at once; the horizon's slots
        ahead keep the model busy meanwhile).
        """
        give_up = self._now() + max_wait_s
        while True:
            now = self._now()
            decision = self.reserve(key, uid)
            if isinstance(decision, Grant):
                if decision.at > now:
                    self.clock.sleep(decision.at - now)
                return decision.at
            jitter = self._rng.uniform(0, min(self.policy.interval_s * 2, 2.0))
            pause = max(decision.retry_in, 0.0) + jitter
            if now + pause > give_up:
                log.info("no %s slot for %s within %.0f s (%s)", key, user_key(uid), max_wait_s,
                         decision.reason)  # fmt: skip
                return None
            self.clock.sleep(pause)

    def hold(self, key: str, delay_s: float) -> None:
        """Every worker pauses calls to ``key`` for ``delay_s`` (the model's own 429 hint).

        One write per shard still behind ``until``; a second 429 for the same pause reads and
        writes nothing more.
        """
        until = self._now() + delay_s
        shards = range(self.policy.shards)
        for shard, state in zip(shards, self._read(key, shards), strict=True):
            if state.next_slot < until:
                self._update(key, shard, lambda s: (hold_transition(s, until), None))
