"""The admission rules (sketchgen.quota): spacing, horizon, fair share, 429 holds.

The fairness and utilisation properties are checked on a discrete-event simulation of
workers over the pure transitions, with simulated time: deterministic, and no timing in the
assertions.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

import pytest

from sketchgen.adapters.local.quota_gate import MemoryQuotaGate
from sketchgen.errors import StorageError, TransientModelError
from sketchgen.ports import ImageRequest, ImageResponse
from sketchgen.quota import (
    MAX_WRITES_PER_DOC_S,
    SHARD_WRITES_PER_S,
    GatedModel,
    Grant,
    QuotaPolicy,
    QuotaState,
    Wait,
    hold_transition,
    reserve_transition,
)
from sketchgen.schemas import Variation
from sketchgen.testing.clock import FakeClock
from sketchgen.testing.contention import ContentionModel

T = TypeVar("T")

AT_1000 = datetime.fromtimestamp(1000.0, UTC)  # epoch second 1000: round slot times
POLICY = QuotaPolicy(rpm=120, horizon_s=10.0)  # a slot every 0.5 s; 3 shards, 1.5 s apart


def test_shards_keep_each_document_under_one_write_a_second() -> None:
    for rpm in (30, 60, 120, 1_000, 10_000, 100_000):
        policy = QuotaPolicy(rpm=rpm)
        assert 1.0 / policy.shard_interval_s <= MAX_WRITES_PER_DOC_S + 1e-9
        # and no more shards than that needs (each shard near the limit)
        assert policy.shards == 1 or 1.0 / policy.shard_interval_s > MAX_WRITES_PER_DOC_S / 2
    assert QuotaPolicy(rpm=1_000).shards == 21


def _grants(
    shard: int, user: str = "a", state: QuotaState | None = None, now: float = 1000.0
) -> tuple[list[float], Wait]:
    """Ask ``shard`` once per its interval from ``now`` until it refuses: (grants, refusal)."""
    state, grants = state or QuotaState(), list[float]()
    while True:
        changed, decision = reserve_transition(state, user, now, POLICY, shard=shard)
        if isinstance(decision, Wait):
            return grants, decision
        assert changed is not None
        state = changed
        grants.append(decision.at)
        now += POLICY.shard_interval_s


def test_a_shard_grants_through_a_bucket_under_firestores_limit() -> None:
    changed, first = reserve_transition(QuotaState(), "a", 1000.0, POLICY, shard=1)
    assert isinstance(first, Grant) and changed is not None
    # shard 1 of 3 owns the slots k = 1 (mod 3) of the 0.5 s schedule: 2002 at 1001.0
    assert first.at == 1001.0
    # the bucket (1.5 at most, 0.9 a second) holds 0.5 now: the next write waits
    again, busy = reserve_transition(changed, "b", 1000.0, POLICY, shard=1)
    assert again is None and isinstance(busy, Wait) and busy.reason == "shard_busy"
    assert busy.retry_in == pytest.approx(0.5 / SHARD_WRITES_PER_S)
    _, second = reserve_transition(changed, "b", 1000.0 + busy.retry_in, POLICY, shard=1)
    assert isinstance(second, Grant) and second.at == 1001.0 + POLICY.shard_interval_s
    # asked without pause, a shard takes at most 10 writes in 10 s
    state, now, grants = QuotaState(), 1000.0, 0
    while now < 1010.0:
        changed, decision = reserve_transition(state, "a", now, POLICY)
        if isinstance(decision, Grant):
            state, grants = changed or state, grants + 1
        now += 0.05
    assert grants <= 10


def test_a_shard_stops_at_the_horizon() -> None:
    far = QuotaState(next_slot=1000.0 + POLICY.horizon_s + 3.0)
    changed, decision = reserve_transition(far, "a", 1000.0, POLICY, shard=0)
    assert changed is None and isinstance(decision, Wait) and decision.reason == "quota"
    start = POLICY.slot_at_or_after(0, far.next_slot)
    assert decision.retry_in == pytest.approx(start - POLICY.horizon_s - 1000.0)


def test_the_shards_interleave_into_one_schedule() -> None:
    starts = []
    for shard in range(POLICY.shards):
        state, now = QuotaState(), 1000.0
        for _ in range(4):
            changed, decision = reserve_transition(state, "a", now, POLICY, shard=shard)
            assert isinstance(decision, Grant) and changed is not None
            state, starts, now = changed, [*starts, decision.at], now + POLICY.shard_interval_s
    assert sorted(starts) == [1000.0 + 0.5 * k for k in range(12)]


def test_a_second_active_user_halves_the_first_users_share() -> None:
    # a holds the shard's slots of the last horizon and the next (13 of them)
    held = tuple(1000.0 + 1.5 * k for k in range(-6, POLICY.shard_lookahead + 1))
    state = QuotaState(next_slot=1005.0, slots={"a": held})
    now = 1000.0 + 0.01
    _, for_a = reserve_transition(state, "a", now, POLICY, active=2)
    assert isinstance(for_a, Wait) and for_a.reason == "fair_share"
    _, for_b = reserve_transition(state, "b", now, POLICY, active=2)
    assert isinstance(for_b, Grant)
    _, alone = reserve_transition(state, "a", now, POLICY, active=1)
    assert isinstance(alone, Grant)  # nobody else asked: a keeps every slot


def test_a_refusal_writes_nothing() -> None:
    changed, decision = reserve_transition(QuotaState(next_slot=100.0), "b", 0.0, POLICY)
    assert changed is None and isinstance(decision, Wait)


def test_hold_moves_the_schedule_and_never_back() -> None:
    held = hold_transition(QuotaState(next_slot=5.0), until=50.0)
    assert held is not None and held.next_slot == 50.0
    assert hold_transition(held, until=20.0) is None
    _, decision = reserve_transition(held, "a", 45.0, POLICY)
    assert isinstance(decision, Grant) and decision.at == 51.0  # shard 0's first slot after


def test_state_round_trips_through_a_document() -> None:
    state = QuotaState(next_slot=3.5, slots={"a": (1.0, 1.5)})
    assert QuotaState.from_doc(state.to_doc()) == state
    assert QuotaState.from_doc(None) == QuotaState()


# -- a simulation of workers over the gate, with Firestore's per-document limit ----------------


class ContendedGate(MemoryQuotaGate):
    """The memory gate with each shard behind Firestore's write limit (1/s, burst 3)."""

    def __init__(self, policy: QuotaPolicy, clock: FakeClock, seed: int) -> None:
        super().__init__(policy, clock=clock, rng=random.Random(seed))
        self.contention = ContentionModel(clock)

    def _update(
        self, key: str, shard: int, transition: Callable[[QuotaState], tuple[QuotaState | None, T]]
    ) -> T:
        path = f"quota/{key}/shards/{shard}"
        changed, result = transition(self.shard_states.get((key, shard), QuotaState()))
        if changed is not None:
            if not self.contention.admit([path]):
                raise StorageError("too contended")
            self.contention.written([path])
            self.shard_states[(key, shard)] = changed
        return result


@dataclass
class Simulation:
    """Workers that each take a task, ask the gate for a slot, call the model for ``latency``
    seconds; events on a fake clock."""

    policy: QuotaPolicy
    latency: float = 2.0
    seed: int = 7
    calls: list[tuple[float, str]] = field(default_factory=list)  # (slot start, user)
    done: dict[str, float] = field(default_factory=dict)  # user → when its last call ended

    def __post_init__(self) -> None:
        self.clock = FakeClock(AT_1000)
        self.gate = ContendedGate(self.policy, self.clock, self.seed)

    def run(self, users: dict[str, tuple[float, int, int]]) -> None:
        """users: name → (arrival time, tasks, concurrent workers)."""
        rng = random.Random(self.seed)
        start = self.clock.time()
        left = {u: tasks for u, (_, tasks, _) in users.items()}
        events: list[tuple[float, int, str]] = []
        for n, (user, (arrival, tasks, workers)) in enumerate(users.items()):
            for w in range(min(tasks, workers)):
                heapq.heappush(events, (start + arrival + 0.001 * w, n * 1000 + w, user))
                left[user] -= 1
        while events:
            now, worker, user = heapq.heappop(events)
            self.clock.advance(now - self.clock.time())
            decision = self.gate.reserve("m", user)
            if isinstance(decision, Wait):
                jitter = rng.uniform(0, min(self.policy.interval_s * 2, 2.0))
                heapq.heappush(events, (now + decision.retry_in + jitter, worker, user))
                continue
            self.calls.append((decision.at - start, user))
            ended = decision.at + self.latency
            self.done[user] = max(self.done.get(user, 0.0), ended - start)
            if left[user] > 0:
                left[user] -= 1
                heapq.heappush(events, (ended, worker, user))


def test_a_small_job_is_not_starved_by_a_big_batch() -> None:
    policy = QuotaPolicy(rpm=60, horizon_s=10.0)  # one call a second
    sim = Simulation(policy)
    # a: a 100-sketch batch with 30 workers on it; b: 4 sketches arriving 20 s later
    sim.run({"a": (0.0, 100, 30), "b": (20.0, 4, 4)})
    assert sum(user == "b" for _, user in sim.calls) == 4
    # b's wait is the horizon already promised to a, then it shares: its 4 calls start
    # within horizon + 4 x 2 slots (+ a shard's step of jitter) of arriving, long before
    # a's batch drains (~100 s).
    b_starts = sorted(at for at, user in sim.calls if user == "b")
    assert b_starts[-1] - 20.0 <= policy.horizon_s + 8 * policy.interval_s + 4.0
    assert sim.done["a"] > 95.0
    assert sim.done["b"] < sim.done["a"] - 60.0


@pytest.mark.parametrize("rpm", [120, 1_000])
def test_shared_users_get_fair_shares_the_quota_is_used_and_no_shard_is_hot(rpm: int) -> None:
    policy = QuotaPolicy(rpm=rpm, horizon_s=10.0)
    sim = Simulation(policy, latency=1.0)
    tasks = rpm  # about a minute of work
    sim.run({"a": (0.0, tasks, tasks // 3), "b": (0.0, tasks, tasks // 12)})
    starts = sorted(at for at, _ in sim.calls)
    assert len(starts) == 2 * tasks
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= policy.interval_s - 1e-9  # never faster than the quota
    # while both have work the quota is used (>= 90 %) and they share it about evenly
    both = [(at, user) for at, user in sim.calls if at < 0.6 * starts[-1]]
    span = max(at for at, _ in both) - min(at for at, _ in both)
    used = len(both) / (span / policy.interval_s + 1)
    assert used >= 0.9, used
    share_b = sum(user == "b" for _, user in both) / len(both)
    # (b has a quarter of the workers: without the share it would get about a quarter)
    assert 0.35 <= share_b <= 0.65, share_b
    # every shard document under Firestore's limit: once the first horizon is handed out
    # (a burst the bucket allows), at most one write a second in any 10 s, 0.8 on average
    writes = sim.gate.contention.writes()
    assert len(writes) == policy.shards
    for times in writes.values():
        steady = [t for t in times if t >= policy.horizon_s]
        assert max(sum(t <= at < t + 10.0 for at in steady) for t in steady) <= 10
        assert len(steady) / (steady[-1] - steady[0]) <= MAX_WRITES_PER_DOC_S + 0.05
    assert max(c.max_1s for c in sim.gate.contention.counts().values()) <= 3


# -- the gate and the gated model ---------------------------------------------------------------


def test_acquire_sleeps_until_its_slot_and_gives_up_past_max_wait() -> None:
    clock = FakeClock(AT_1000)
    gate = MemoryQuotaGate(QuotaPolicy(rpm=60, horizon_s=3.0), clock=clock)
    starts = []
    for _ in range(3):
        slot = gate.acquire("m", "u", max_wait_s=5)
        assert slot == clock.time()
        starts.append(slot)
    assert starts == [1000.0, 1001.0, 1002.0]
    # another user fills the horizon; u asks with too little patience
    for other in range(10):
        while isinstance(gate.reserve("m", f"x{other}"), Grant):
            pass
    before = clock.time()
    assert gate.acquire("m", "u", max_wait_s=0.1) is None
    assert clock.time() - before <= 0.1


class _SlowWrites(MemoryQuotaGate):
    """A gate whose write reaches the store ``delay_s`` after its probes (a round trip on a
    busy machine, or a lost race retried)."""

    delay_s = 2.0

    def _update(
        self, key: str, shard: int, transition: Callable[[QuotaState], tuple[QuotaState | None, T]]
    ) -> T:
        assert isinstance(self.clock, FakeClock)
        self.clock.advance(self.delay_s)
        return super()._update(key, shard, transition)


def test_a_grant_is_recorded_when_it_is_written_not_when_the_shards_were_probed() -> None:
    clock = FakeClock(AT_1000)
    gate = _SlowWrites(QuotaPolicy(rpm=30, horizon_s=10.0), clock=clock)  # one shard
    first = gate.reserve("m", "a")
    assert isinstance(first, Grant) and first.at == 1002.0  # the slot at or after the write
    (state,) = gate.shard_states.values()
    # Recorded at the probes' 1000.0, the bucket would count 2 s of refill that came before
    # the write, and grant the next write that much sooner.
    assert state.granted_at == clock.time() == 1002.0


def _request() -> ImageRequest:
    variation = Variation(index=0, layout="close_up", exaggeration="subtle")
    return ImageRequest(index=0, prompt="p", brief="b", variation=variation, model="m")


class RateLimitedOnce:
    def __init__(self) -> None:
        self.calls = 0

    def generate_image(self, request: ImageRequest) -> ImageResponse:
        self.calls += 1
        if self.calls == 1:
            raise TransientModelError("quota", status=429, retry_after=7.0)
        return ImageResponse(data=b"png", mime_type="image/png", model_used=request.model)


def test_a_429_pauses_every_worker_and_the_retry_waits_for_the_gate() -> None:
    clock = FakeClock(AT_1000)
    gate = MemoryQuotaGate(QuotaPolicy(rpm=600), clock=clock)
    model = RateLimitedOnce()
    gated = GatedModel(model, gate, "u", max_wait_s=30)
    with pytest.raises(TransientModelError):
        gated.generate_image(_request())
    held = [gate.shard_states.get(("m", s), QuotaState()) for s in range(gate.policy.shards)]
    until = clock.time() + 7.0  # the 429 came at the slot's start, with a 7 s RetryInfo
    assert [state.next_slot for state in held] == pytest.approx([until] * len(held))
    other = GatedModel(model, gate, "someone else", max_wait_s=30)
    other.generate_image(_request())
    assert clock.time() >= until  # the other user's call also waited out the hold
