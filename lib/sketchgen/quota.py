"""Quota-aware admission: every worker instance shares the model's requests-per-minute limit.

The model's quota (``SKETCHGEN_MODEL_RPM``) is one budget for the whole deployment, so the
limiter lives in shared state and every model call takes a *slot* from it first. Slots sit on
one schedule spaced ``60 / rpm`` seconds apart (epoch-aligned: slot ``k`` starts at
``k * interval``), so no two calls anywhere start closer than one interval.

No hot document (ADR 0050): the schedule is split into ``shards`` interleaved sub-schedules;
shard ``s`` owns the slots ``k ≡ s (mod shards)``, one every ``shards * interval`` seconds,
and is stored in its own document (``quota/{model}/shards/{s}`` in Firestore). Granting a
slot is one write to one shard, and a shard's slots open one at a time as the horizon moves,
so at the configured RPM a shard takes at most ``1 / (shards * interval)`` writes a second;
``shards = ceil(rpm / 60 / MAX_WRITES_PER_DOC_S)`` keeps that at or below 0.8, and a shard
grants through a bucket of 0.9 writes a second, burst 1.5 (even when its horizon has room
for more), so no burst of asks writes it faster. A caller probes
a few shards at random (a batched read), takes a slot from the one whose slot comes first, and
on losing a race tries the next. A turned-away caller writes nothing to a shard.

Fair share: a user who asked within ``waiting_ttl_s`` is *active* (a per-user presence
document, written at most once per third of the ttl, counted with a query); each active user may
hold at most ``lookahead / active`` slots ahead, counted per shard
(``shard_lookahead / active``, at least one). One user's 100-sketch batch therefore fills the
schedule only while nobody else is asking. A user alone gets every slot.

The rules are pure functions over :class:`QuotaState` (one shard; like :mod:`sketchgen.jobs`);
a gate only has to read shards, apply a transition to one atomically, and keep presence.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from sketchgen.errors import TransientModelError
from sketchgen.ports import Clock, ImageRequest, ImageResponse, SyncImageModel

__all__ = [
    "MAX_WRITES_PER_DOC_S",
    "Decision",
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

T = TypeVar("T")
_HOLD_WITHOUT_HINT_S = 1.0  # a 429 without RetryInfo pauses everyone this long
# Firestore sustains about one write a second per document; stay a margin below it.
MAX_WRITES_PER_DOC_S = 0.8  # a shard's slots a second at the configured RPM
# A shard's grants (writes) go through a bucket a little faster than its slots: at most 10 in
# any 10 s and 2 in a second (Firestore's contention starts past 1/s with a burst of 3).
SHARD_WRITES_PER_S = 0.9
SHARD_BURST = 1.5


@dataclass(frozen=True, slots=True)
class QuotaPolicy:
    rpm: float
    horizon_s: float = 10.0  # how far ahead slots are handed out
    waiting_ttl_s: float = 10.0  # a user stays active this long after asking

    def __post_init__(self) -> None:
        if self.rpm <= 0:
            raise ValueError("rpm must be positive")

    @property
    def interval_s(self) -> float:
        return 60.0 / self.rpm

    @property
    def shards(self) -> int:
        """Documents the schedule is split over, so each takes <= 0.8 writes a second."""
        return max(1, math.ceil(self.rpm / 60.0 / MAX_WRITES_PER_DOC_S))

    @property
    def shard_interval_s(self) -> float:
        return self.interval_s * self.shards

    @property
    def lookahead(self) -> int:
        """Slots the horizon holds: what all active users share."""
        return max(1, math.floor(self.horizon_s / self.interval_s))

    @property
    def shard_lookahead(self) -> int:
        return max(1, math.floor(self.horizon_s / self.shard_interval_s))

    def slot_at_or_after(self, shard: int, t: float) -> float:
        """The first start of a slot of ``shard`` at or after ``t``."""
        step, phase = self.shard_interval_s, shard * self.interval_s
        return phase + math.ceil((t - phase) / step - 1e-9) * step


@dataclass(frozen=True, slots=True)
class QuotaState:
    """One shard of a model's schedule. Times are epoch seconds (NTP-synced instances)."""

    next_slot: float = 0.0  # no slot of this shard is handed out before this
    slots: Mapping[str, tuple[float, ...]] = field(default_factory=dict)  # user → slots ahead
    granted_at: float = -math.inf  # when this shard last handed out a slot (was written)
    tokens: float = SHARD_BURST  # grants it may make now (a bucket: Firestore's own limit)

    def to_doc(self) -> dict[str, Any]:
        return {
            "next_slot": self.next_slot,
            "slots": {user: list(times) for user, times in self.slots.items()},
            "granted_at": self.granted_at if math.isfinite(self.granted_at) else None,
            "tokens": self.tokens,
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any] | None) -> QuotaState:
        if not doc:
            return cls()
        return cls(
            next_slot=float(doc.get("next_slot", 0.0)),
            slots={u: tuple(float(t) for t in ts) for u, ts in doc.get("slots", {}).items()},
            granted_at=float(doc["granted_at"]) if doc.get("granted_at") is not None else -math.inf,
            tokens=float(doc.get("tokens", SHARD_BURST)),
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
    """Who a slot belongs to, without putting user ids in the quota documents."""
    return hashlib.sha256(uid.encode()).hexdigest()[:16]


def reserve_transition(
    state: QuotaState,
    user: str,
    now: float,
    policy: QuotaPolicy,
    *,
    shard: int = 0,
    active: int = 1,
) -> tuple[QuotaState | None, Decision]:
    """(the shard state to write, or None for no change; the decision for ``user``).

    ``active``: how many users asked lately (``user`` included). A refusal writes nothing.
    """
    # A user's slots are counted over the horizon behind as well as ahead: a shard grants
    # about one slot per its interval (never faster: it is one document), so the slots ahead
    # stay few and the share is of the shard's recent and coming slots together.
    since = now - policy.horizon_s
    slots = {
        u: kept for u, ts in state.slots.items() if (kept := tuple(t for t in ts if t > since))
    }
    # A user alone takes every slot; with others, its part of the slots the shard has in the
    # span (the schedule runs up to a horizon ahead, so about 2 x its lookahead).
    share = math.inf if active <= 1 else math.ceil((2 * policy.shard_lookahead + 1) / active)
    start = policy.slot_at_or_after(shard, max(now, state.next_slot))
    mine = slots.get(user, ())
    if start - now > policy.horizon_s:
        return None, Wait(retry_in=start - policy.horizon_s - now, reason="quota")
    if len(mine) >= share:
        return None, Wait(
            retry_in=max(min(mine) + policy.horizon_s - now, 0.0), reason="fair_share"
        )
    # Grants (writes) through a bucket (SHARD_WRITES_PER_S), even when the horizon has room
    # for more: a burst of asks after a quiet spell would otherwise write one shard
    # several times in a second. Its slots come at <= 0.8 a second, so the schedule still
    # runs ahead of the clock (and no slot is lost to a late ask).
    tokens = min(SHARD_BURST, state.tokens + (now - state.granted_at) * SHARD_WRITES_PER_S)
    if tokens < 1.0 - 1e-9:
        return None, Wait(retry_in=(1.0 - tokens) / SHARD_WRITES_PER_S, reason="shard_busy")
    slots[user] = (*mine, start)
    granted = QuotaState(
        next_slot=start + policy.shard_interval_s, slots=slots, granted_at=now, tokens=tokens - 1
    )
    return granted, Grant(at=start)


def hold_transition(state: QuotaState, until: float) -> QuotaState | None:
    """The model said 429 with a RetryInfo delay: no new slot starts before ``until``."""
    if state.next_slot >= until:
        return None
    return QuotaState(
        next_slot=until, slots=state.slots, granted_at=state.granted_at, tokens=state.tokens
    )


class QuotaGate(Protocol):
    """The quota-gate port: admission to the model, shared by every worker that uses the same
    state. Stores derive from :class:`sketchgen.adapters.quota_gate_base.TransactionalQuotaGate`
    (the waiting and the rules above over a store's shard reads and atomic updates)."""

    policy: QuotaPolicy
    clock: Clock

    def reserve(self, key: str, uid: str) -> Decision:
        """One attempt at a slot for ``uid`` (no sleeping): a grant, or how long to wait."""
        ...

    def acquire(self, key: str, uid: str, *, max_wait_s: float) -> float | None:
        """Wait for a slot to call model ``key`` for user ``uid``: its start, or None if none
        came within ``max_wait_s``."""
        ...

    def hold(self, key: str, delay_s: float) -> None:
        """Every worker pauses calls to ``key`` for ``delay_s`` (the model's own 429 hint)."""
        ...


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
