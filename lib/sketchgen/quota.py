"""Quota-aware admission: every worker instance shares the model's requests-per-minute limit.

The model's quota (``SKETCHGEN_MODEL_RPM``) is one budget for the whole deployment, so the
limiter lives in shared state (a Firestore document per model in the cloud, memory in one
process) and every model call takes a *slot* from it first. Slots are handed out on one
schedule spaced ``60 / rpm`` seconds apart (the generic cell-rate algorithm): a worker that
gets a slot knows exactly when it may call and sleeps until then, with no polling and one
write per call. Slots are handed out at most ``horizon_s`` ahead; beyond that a worker is told
when to ask again.

Fair share: users who hold slots ahead or were recently turned away are *active*, and each
may hold at most ``lookahead / active`` slots ahead. One user's 100-sketch batch therefore
fills the schedule only while nobody else is asking; as soon as another user asks, the big
batch is held to half the slots and the newcomer takes the next free ones. A user alone gets
every slot (the limiter never leaves quota unused while someone waits).

The rules are pure functions over :class:`QuotaState` (like :mod:`sketchgen.jobs`); a gate
only has to apply them atomically (:meth:`QuotaGate._update`).
"""

from __future__ import annotations

import hashlib
import math
import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from sketchgen.clock import SYSTEM_CLOCK
from sketchgen.errors import TransientModelError
from sketchgen.logs import get_logger
from sketchgen.ports import Clock, ImageRequest, ImageResponse, SyncImageModel

__all__ = [
    "GatedModel",
    "Grant",
    "QuotaGate",
    "QuotaPolicy",
    "QuotaState",
    "Wait",
    "hold_transition",
    "reserve_transition",
    "user_key",
]

log = get_logger(__name__)
T = TypeVar("T")
_HOLD_WITHOUT_HINT_S = 1.0  # a 429 without RetryInfo pauses everyone this long


@dataclass(frozen=True, slots=True)
class QuotaPolicy:
    rpm: float
    horizon_s: float = 10.0  # how far ahead slots are handed out
    waiting_ttl_s: float = 10.0  # a user turned away stays active this long without asking again

    def __post_init__(self) -> None:
        if self.rpm <= 0:
            raise ValueError("rpm must be positive")

    @property
    def interval_s(self) -> float:
        return 60.0 / self.rpm

    @property
    def lookahead(self) -> int:
        """Slots the horizon holds: what all active users share."""
        return max(1, math.floor(self.horizon_s / self.interval_s))


@dataclass(frozen=True, slots=True)
class QuotaState:
    """One model's schedule. Times are epoch seconds (instances share NTP-synced clocks)."""

    next_slot: float = 0.0  # the earliest start of the next slot handed out
    slots: Mapping[str, tuple[float, ...]] = field(default_factory=dict)  # user → slots ahead
    waiting: Mapping[str, float] = field(default_factory=dict)  # user → last turned away

    def to_doc(self) -> dict[str, Any]:
        return {
            "next_slot": self.next_slot,
            "slots": {user: list(times) for user, times in self.slots.items()},
            "waiting": dict(self.waiting),
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any] | None) -> QuotaState:
        if not doc:
            return cls()
        return cls(
            next_slot=float(doc.get("next_slot", 0.0)),
            slots={u: tuple(float(t) for t in ts) for u, ts in doc.get("slots", {}).items()},
            waiting={u: float(t) for u, t in doc.get("waiting", {}).items()},
        )


@dataclass(frozen=True, slots=True)
class Grant:
    at: float  # call the model at (or after) this time


@dataclass(frozen=True, slots=True)
class Wait:
    retry_in: float  # nothing for this user now; ask again after this many seconds
    reason: str


Decision = Grant | Wait


def user_key(uid: str) -> str:
    """Who a slot belongs to, without putting user ids in the quota document."""
    return hashlib.sha256(uid.encode()).hexdigest()[:16]


def reserve_transition(
    state: QuotaState, user: str, now: float, policy: QuotaPolicy
) -> tuple[QuotaState | None, Decision]:
    """(the state to write, or None for no change; the decision for ``user``)."""
    slots = {u: kept for u, ts in state.slots.items() if (kept := tuple(t for t in ts if t > now))}
    waiting = {u: t for u, t in state.waiting.items() if now - t < policy.waiting_ttl_s}
    active = set(slots) | set(waiting) | {user}
    share = max(1, policy.lookahead // len(active))
    start = max(now, state.next_slot)
    mine = slots.get(user, ())
    decision: Decision
    if start - now > policy.horizon_s:
        decision = Wait(retry_in=start - policy.horizon_s - now, reason="quota")
    elif len(mine) >= share:
        decision = Wait(retry_in=min(mine) - now, reason="fair_share")
    else:
        waiting.pop(user, None)
        slots[user] = (*mine, start)
        granted = QuotaState(next_slot=start + policy.interval_s, slots=slots, waiting=waiting)
        return granted, Grant(at=start)
    # Turned away: be counted as active (so others' share shrinks), but write that at most a
    # few times per ttl, not on every ask.
    if now - state.waiting.get(user, -math.inf) < policy.waiting_ttl_s / 3:
        return None, decision
    waiting[user] = now
    return QuotaState(next_slot=state.next_slot, slots=slots, waiting=waiting), decision


def hold_transition(state: QuotaState, until: float) -> QuotaState | None:
    """The model said 429 with a RetryInfo delay: no new slot starts before ``until``."""
    if state.next_slot >= until:
        return None
    return QuotaState(next_slot=until, slots=state.slots, waiting=state.waiting)


class QuotaGate(ABC):
    """Admission to the model, shared by every worker that uses the same state.

    A gate only has to provide ``_update`` (atomically: read the state for ``key``, apply a
    transition, write what it returns); the waiting and the rules are the same everywhere.
    """

    def __init__(self, policy: QuotaPolicy, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.policy = policy
        self.clock = clock
        self._rng = random.Random()

    def _now(self) -> float:
        return self.clock.now().timestamp()

    @abstractmethod
    def _update(
        self, key: str, transition: Callable[[QuotaState], tuple[QuotaState | None, T]]
    ) -> T:
        """Atomically apply ``transition`` to the state stored for ``key``."""

    def acquire(self, key: str, uid: str, *, max_wait_s: float) -> float | None:
        """Wait for a slot to call model ``key`` for user ``uid``: its start, or None if none
        came within ``max_wait_s``.

        Returns at the slot's start. A worker turned away sleeps until the schedule can change
        for it (plus jitter, so waiting workers do not all ask at once; the horizon's slots
        ahead keep the model busy meanwhile).
        """
        user = user_key(uid)
        give_up = self._now() + max_wait_s
        while True:
            now = self._now()
            decision = self._update(
                key, partial(reserve_transition, user=user, now=now, policy=self.policy)
            )
            if isinstance(decision, Grant):
                if decision.at > now:
                    self.clock.sleep(decision.at - now)
                return decision.at
            jitter = self._rng.uniform(0, min(self.policy.horizon_s / 4, 2.0))
            pause = max(decision.retry_in, 0.0) + jitter
            if now + pause > give_up:
                log.info("no %s slot for %s within %.0f s (%s)", key, user, max_wait_s,
                         decision.reason)  # fmt: skip
                return None
            self.clock.sleep(pause)

    def hold(self, key: str, delay_s: float) -> None:
        """Every worker pauses calls to ``key`` for ``delay_s`` (the model's own 429 hint)."""
        until = self._now() + delay_s
        self._update(key, lambda state: (hold_transition(state, until), None))


class GatedModel:
    """A model whose every call first takes a slot from ``gate`` for user ``uid``.

    ``admitted``: the caller already took the first call's slot. A 429 from the model (the
    quota is shared with others, or configured too high) pauses every worker for the
    server's RetryInfo delay, not just this one.
    """

    def __init__(
        self,
        model: SyncImageModel,
        gate: QuotaGate,
        uid: str,
        max_wait_s: float,
        *,
        admitted: bool = False,
    ) -> None:
        self.model = model
        self.gate = gate
        self.uid = uid
        self.max_wait_s = max_wait_s
        self._admitted = admitted

    def generate_image(self, request: ImageRequest) -> ImageResponse:
        if self._admitted:
            self._admitted = False
        elif self.gate.acquire(request.model, self.uid, max_wait_s=self.max_wait_s) is None:
            raise TransientModelError(
                f"no {request.model} quota slot within {self.max_wait_s:.0f} s", status=429
            )
        try:
            return self.model.generate_image(request)
        except TransientModelError as error:
            if error.status == 429:
                hint = error.retry_after
                self.gate.hold(request.model, _HOLD_WITHOUT_HINT_S if hint is None else hint)
            raise
