"""A user's usage in shards (docs/decisions/0051): a heavy user's burst writes no document
past Firestore's limit, a stale read never passes a limit, and fragments of the day's images
are lent where a job needs them."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

from sketchgen.adapters.local.usage_ledger import MemoryUsageLedger
from sketchgen.spend import Account, JobCharge, Limits, UsageDoc, reserve_transition
from sketchgen.testing.clock import FakeClock
from sketchgen.testing.contention import ContentionModel
from sketchgen.usage_shards import UsageShard, combine, plan_writes, split

NOW = datetime(2026, 12, 3, 12, tzinfo=UTC)
DAY = "2026-12-03"


class ContendedLedger(MemoryUsageLedger):
    """The memory ledger with each shard document behind Firestore's write limit (1/s,
    burst 3), named as in Firestore."""

    def __init__(self, clock: FakeClock, shards: int) -> None:
        super().__init__(clock=clock, rng=random.Random(7))
        self.shards = shards
        self.contention = ContentionModel(clock)

    def _admitted(self, uid: str, shards: list[int]) -> bool:
        paths = [f"usage/{uid}" if i == 0 else f"usage/{uid}/shards/{i}" for i in shards]
        if not self.contention.admit(paths):
            return False
        self.contention.written(paths)
        return True


def _burst(ledger: ContendedLedger, clock: FakeClock, jobs: int, limits: Limits) -> list[str]:
    """``jobs`` submissions of 6 images at one instant, then their settlements at another."""
    admitted = [
        job
        for job in (f"job-{n}" for n in range(jobs))
        if ledger.reserve("heavy", job, 6, limits, now=NOW).refused is None
    ]
    clock.advance(5)
    for job in admitted:
        ledger.settle("heavy", job, refunded=0, cost_usd=0.234, now=NOW)
    return admitted


def test_a_heavy_users_burst_stays_under_the_write_limit_of_every_document() -> None:
    """The bench's heavy user (bench_burst.py): 5 jobs submitted at once, settled at once.
    On one document that is refused past 3 writes in a second; in shards no document takes
    more than 2 writes in a second, and nothing is refused."""
    limits = Limits(daily_images=200, active_jobs=5)
    clock = FakeClock()
    sharded = ContendedLedger(clock, shards=4)
    assert len(_burst(sharded, clock, 5, limits)) == 5
    counts = sharded.contention.counts()
    assert sharded.contention.refused == 0
    assert max(c.max_1s for c in counts.values()) <= 2
    assert max(c.max_10s for c in counts.values()) <= 4
    assert sum(c.total for c in counts.values()) == 10  # each job: reserved, settled
    usage = sharded.usage("heavy")
    assert usage.images_used == 30 and usage.jobs == {}
    assert usage.cost_usd == round(5 * 0.234, 6)

    # The same burst on one document (the ledger before the shards): refused, retried.
    alone = FakeClock()
    one = ContendedLedger(alone, shards=1)
    assert len(_burst(one, alone, 5, limits)) == 5
    assert one.contention.refused > 0


def test_a_burst_past_the_active_job_limit_admits_exactly_the_limit() -> None:
    """Twelve submissions at once against 5 active jobs and 40 images: whichever shards they
    land on, exactly 5 are admitted, and with jobs of 6 images the day's 40 then bind."""
    clock = FakeClock()
    ledger = ContendedLedger(clock, shards=4)
    limits = Limits(daily_images=40, active_jobs=5)
    admitted = [
        job
        for job in (f"job-{n}" for n in range(12))
        if ledger.reserve("heavy", job, 6, limits, now=NOW).refused is None
    ]
    assert len(admitted) == 5 and len(ledger.usage("heavy").active_job_ids) == 5
    for job in admitted[:3]:
        ledger.settle("heavy", job, refunded=0, cost_usd=0.0, now=NOW)
    again = [
        job
        for job in (f"more-{n}" for n in range(5))
        if ledger.reserve("heavy", job, 6, limits, now=NOW).refused is None
    ]
    assert len(again) == 1  # 30 + 6 = 36 of 40: a second would pass the day's images
    assert ledger.usage("heavy").images_used == 36
    assert all(c.max_1s <= 3 for c in ledger.contention.counts().values())


class StaleLedger(MemoryUsageLedger):
    """A ledger whose next read returns a snapshot taken earlier (another instance's write
    landed in between): what an instance deciding at the same moment as another sees."""

    stale: tuple[Account | None, list[tuple[UsageShard | None, Any]]] | None = None

    def _read(
        self, uid: str, *, account: bool
    ) -> tuple[Account | None, list[tuple[UsageShard | None, Any]]]:
        if self.stale is not None:
            snapshot, self.stale = self.stale, None
            return snapshot
        return super()._read(uid, account=account)


def test_a_decision_on_a_stale_read_never_passes_the_limit() -> None:
    ledger = StaleLedger(rng=random.Random(1))
    limits = Limits(daily_images=4, active_jobs=10)  # one image per shard
    for job in ("a", "b", "c"):
        assert ledger.reserve("u", job, 1, limits, now=NOW).refused is None
    before_d = ledger._read("u", account=False)
    assert ledger.reserve("u", "d", 1, limits, now=NOW).refused is None  # the last image
    ledger.stale = before_d  # e decides on the read from before d was written
    refused = ledger.reserve("u", "e", 1, limits, now=NOW)
    assert refused.refused == "budget_exhausted"  # its write failed; read again, refused
    assert ledger.usage("u").images_used == 4


def test_images_left_in_fragments_are_lent_to_the_shard_that_takes_the_job() -> None:
    limits = Limits(daily_images=12, active_jobs=4)  # 3 images and 1 slot a shard
    shards = [
        UsageShard(usage=UsageDoc(day=DAY, images_used=1, jobs={"x": _charge(1)})),
        UsageShard(usage=UsageDoc(day=DAY, images_used=1, jobs={"y": _charge(1)})),
        UsageShard(usage=UsageDoc(day=DAY, images_used=1, jobs={"z": _charge(1)})),
        None,
    ]
    changed, result = reserve_transition(combine(shards), "big", 9, limits, NOW)
    assert result.refused is None and changed is not None
    writes = plan_writes(shards, changed, limits, random.Random(3))
    assert writes is not None
    assert writes[3].usage.jobs.keys() == {"big"}  # the only shard with a free slot
    assert writes[3].lent == 6 and writes[3].usage.images_used == 9
    assert sum(w.lent for w in writes.values()) == 0  # lent by the others, 2 each
    after = [writes.get(i, s) for i, s in enumerate(shards)]
    assert combine(after) == changed  # the shards sum to what the rule decided
    caps = split(limits.daily_images, 4)
    for i, shard in enumerate(after):
        assert shard is not None and shard.usage.images_used <= caps[i] + shard.lent


def test_a_new_day_starts_every_shard_with_nothing_used_or_lent() -> None:
    yesterday = UsageShard(usage=UsageDoc(day="2026-12-02", images_used=9, cost_usd=1.0), lent=6)
    assert yesterday.on(DAY) == UsageShard(usage=UsageDoc(day=DAY))
    kept = UsageShard(usage=UsageDoc(day="2026-12-02", jobs={"j": _charge(2, "2026-12-02")}))
    today = UsageShard(usage=UsageDoc(day=DAY, images_used=2))
    assert combine([kept, today, None, None]) == UsageDoc(
        day=DAY, images_used=2, jobs={"j": _charge(2, "2026-12-02")}
    )
    assert UsageShard.from_doc(today.to_doc()) == today
    assert UsageShard.from_doc({"day": DAY, "images_used": 2}) == today  # a document from
    # before the shards (usage/{uid}, now shard 0) reads as a shard with nothing lent


def _charge(images: int, day: str = DAY) -> JobCharge:
    return JobCharge(day=day, images=images, at=NOW)


class LosesOnce(MemoryUsageLedger):
    """A ledger whose first commit loses a race (another instance wrote those shards)."""

    def __init__(self, seed: int) -> None:
        super().__init__(rng=random.Random(seed))
        self.commits: list[list[int]] = []

    def _commit(self, uid: str, writes: dict[int, tuple[UsageShard, Any]]) -> bool:
        self.commits.append(sorted(writes))
        if len(self.commits) == 1:
            return False
        return super()._commit(uid, writes)


def test_after_a_lost_race_a_new_job_tries_another_shard() -> None:
    """Each attempt on a shard counts against its write rate, even a failed one: a job that
    lost a race goes to another shard with a free slot, not back to the one just written."""
    limits = Limits(daily_images=200, active_jobs=8)
    for seed in range(20):  # a random choice alone would take the same shard 1 time in 4
        ledger = LosesOnce(seed)
        assert ledger.reserve("u", "a", 6, limits, now=NOW).refused is None
        first, second = ledger.commits
        assert not set(first) & set(second), seed
        assert ledger.usage("u").active_job_ids == ["a"]
