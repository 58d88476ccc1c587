"""The deployment's daily spend ceiling: one USD figure above every user's budget.

Open sign-up makes per-user budgets unbounded in sum (N accounts × their images), so every
paid call admitted anywhere in the deployment — a job's images when it is admitted, a
describer or embedder call before it is sent — is also charged here, and refused once the UTC
day's ceiling is reached.

No hot document (docs/decisions/0021): the day's ceiling is split into :func:`shard_count`
shards, each holding ``ceiling / shards``. A charge tries :data:`CHARGE_TRIES` shards picked
at random, each try one atomic read-modify-write of one shard (a full shard is only read),
and is refused when none of them has room. Never more tries: if every charge searched until
it found room, the last open shards of the day would take every write (measured in
``bench/bench_ceiling.py``: 21 writes in a second on one document at 100,000 jobs an hour).
With two tries a shard takes at most ``2 × rate / shards`` writes a second — 0.09 at 10,000
jobs an hour, 0.87 at 100,000. The price: as shards fill, a charge is refused with money
left in other shards (the ceiling is never passed, but the day's end is gradual).

The rules are pure functions (like :mod:`sketchgen.spend`); an adapter applies
:meth:`sketchgen.adapters.ceiling_base.TransactionalDeploymentCeiling._update_shard`
atomically.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sketchgen.generate.config import MAX_IMAGES
from sketchgen.pricing import PRICE_PER_IMAGE_USD

__all__ = [
    "CHARGE_TRIES",
    "MAX_SHARDS",
    "MIN_SHARD_USD",
    "CeilingStatus",
    "DeploymentCeiling",
    "ShardDoc",
    "charge_shard_transition",
    "shard_count",
]

MAX_SHARDS = 64
CHARGE_TRIES = 2
# A shard must hold at least the dearest job (every image at the dearest price), or such a
# job could fit in the ceiling but in no shard.
_DEAREST_IMAGE_USD = max(p for sizes in PRICE_PER_IMAGE_USD.values() for p in sizes.values())
MIN_SHARD_USD = MAX_IMAGES * _DEAREST_IMAGE_USD
_EPSILON = 1e-9


def shard_count(ceiling_usd: float) -> int:
    """How many shards the day's ceiling is split into: enough that no shard document takes
    more than ~1 write a second at 100,000 jobs an hour (with :data:`CHARGE_TRIES`), never so
    many that one shard cannot hold the dearest job."""
    return max(1, min(MAX_SHARDS, math.floor(ceiling_usd / MIN_SHARD_USD)))


@dataclass(frozen=True, slots=True)
class ShardDoc:
    """``spend_ceiling/{day}/shards/{i}``: what was charged to this shard on ``day``."""

    day: str
    spent_usd: float = 0.0
    charges: int = 0

    @classmethod
    def from_doc(cls, day: str, doc: dict[str, Any] | None) -> ShardDoc:
        doc = doc or {}
        return cls(
            day=day, spent_usd=float(doc.get("spent_usd", 0.0)), charges=int(doc.get("charges", 0))
        )

    def to_doc(self) -> dict[str, Any]:
        return {"day": self.day, "spent_usd": self.spent_usd, "charges": self.charges}


def charge_shard_transition(
    shard: ShardDoc, usd: float, shard_cap_usd: float
) -> tuple[ShardDoc | None, bool]:
    """Add ``usd`` to the shard if it stays within its cap; nothing written when it does not."""
    if shard.spent_usd + usd > shard_cap_usd + _EPSILON:
        return None, False
    changed = ShardDoc(shard.day, round(shard.spent_usd + usd, 6), shard.charges + 1)
    return changed, True


@dataclass(frozen=True, slots=True)
class CeilingStatus:
    """What the operator sees (``sketchgen usage --deployment``)."""

    day: str
    ceiling_usd: float
    spent_usd: float
    charges: int
    shards: int

    @property
    def left_usd(self) -> float:
        return round(max(0.0, self.ceiling_usd - self.spent_usd), 6)

    def as_dict(self) -> dict[str, Any]:
        return {
            "day": self.day,
            "ceiling_usd": self.ceiling_usd,
            "spent_usd": round(self.spent_usd, 6),
            "left_usd": self.left_usd,
            "charges": self.charges,
            "shards": self.shards,
        }


class DeploymentCeiling(Protocol):
    """The deployment-ceiling port: the day's spend, charged and read. Stores derive from
    :class:`sketchgen.adapters.ceiling_base.TransactionalDeploymentCeiling` (the rules above
    applied atomically per shard)."""

    ceiling_usd: float

    def charge(self, usd: float, *, now: datetime | None = None) -> bool:
        """Charge ``usd`` to the day; False (nothing charged) when none of the shards tried
        has room."""
        ...

    def status(self, *, now: datetime | None = None) -> CeilingStatus: ...
