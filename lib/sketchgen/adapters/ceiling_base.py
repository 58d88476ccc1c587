"""What every deployment ceiling shares: the :class:`~sketchgen.ceiling.DeploymentCeiling`
port's charge and status over one atomic read-modify-write of a shard. An adapter-side
template base, not a port (docs/decisions/0063)."""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import UTC, datetime

from sketchgen.ceiling import (
    CHARGE_TRIES,
    CeilingStatus,
    ShardDoc,
    charge_shard_transition,
    shard_count,
)
from sketchgen.spend import utc_day

__all__ = ["TransactionalDeploymentCeiling"]


class TransactionalDeploymentCeiling(ABC):
    """A :class:`~sketchgen.ceiling.DeploymentCeiling` over the day's shards in a store; the
    rules of :mod:`sketchgen.ceiling` applied atomically per shard."""

    def __init__(self, ceiling_usd: float, *, rng: random.Random | None = None) -> None:
        self.ceiling_usd = ceiling_usd
        self.shards = shard_count(ceiling_usd)
        self._rng = rng or random.Random()

    @abstractmethod
    def _update_shard(
        self, day: str, shard: int, transition: Callable[[ShardDoc], tuple[ShardDoc | None, bool]]
    ) -> bool:
        """Atomically: read shard ``shard`` of ``day``, apply ``transition``, write what it
        returns (nothing when None)."""

    @abstractmethod
    def _read_shards(self, day: str) -> list[ShardDoc]:
        """Every shard of ``day`` that was written (any number, read once)."""

    def charge(self, usd: float, *, now: datetime | None = None) -> bool:
        """Charge ``usd`` to the day; False (nothing charged) when none of the shards tried
        has room."""
        if usd <= 0:
            return True
        day = utc_day(now or datetime.now(UTC))
        cap = self.ceiling_usd / self.shards
        tries = min(CHARGE_TRIES, self.shards)
        for shard in self._rng.sample(range(self.shards), tries):
            if self._update_shard(day, shard, lambda s: charge_shard_transition(s, usd, cap)):
                return True
        return False

    def status(self, *, now: datetime | None = None) -> CeilingStatus:
        day = utc_day(now or datetime.now(UTC))
        shards = self._read_shards(day)
        return CeilingStatus(
            day=day,
            ceiling_usd=self.ceiling_usd,
            spent_usd=round(sum(s.spent_usd for s in shards), 6),
            charges=sum(s.charges for s in shards),
            shards=self.shards,
        )
