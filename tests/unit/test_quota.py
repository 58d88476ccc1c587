"""The admission rules (sketchgen.quota): spacing, horizon, fair share, 429 holds.

The fairness and utilisation properties are checked on a discrete-event simulation of
workers over the pure transitions, with simulated time: deterministic, and no timing in the
assertions.
"""

from __future__ import annotations

import heapq
import itertools
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from sketchgen.adapters.local.quota_gate import MemoryQuotaGate
from sketchgen.errors import TransientModelError
from sketchgen.ports import ImageRequest, ImageResponse
from sketchgen.quota import (
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

AT_1000 = datetime.fromtimestamp(1000.0, UTC)  # epoch second 1000: round slot times
POLICY = QuotaPolicy(rpm=120, horizon_s=10.0)  # a slot every 0.5 s, 20 slots ahead


def test_slots_are_spaced_by_the_rate_and_stop_at_the_horizon() -> None:
    state, grants = QuotaState(), []
    while True:
        changed, decision = reserve_transition(state, "a", 1000.0, POLICY)
        if isinstance(decision, Wait):
            break
        assert changed is not None
        state = changed
        grants.append(decision.at)
    assert grants[0] == 1000.0
    assert all(b - a == pytest.approx(POLICY.interval_s) for a, b in itertools.pairwise(grants))
    assert grants[-1] - 1000.0 <= POLICY.horizon_s
    assert len(grants) == POLICY.lookahead + 1
    assert decision.reason == "quota" and 0 < decision.retry_in <= POLICY.interval_s


def test_a_second_user_halves_the_first_users_share() -> None:
    state = QuotaState()
    while isinstance((result := reserve_transition(state, "a", 0.0, POLICY))[1], Grant):
        assert result[0] is not None
        state = result[0]
    # b asks while the horizon is full: turned away, but now counted as active
    changed, decision = reserve_transition(state, "b", 0.0, POLICY)
    assert isinstance(decision, Wait) and changed is not None
    state = changed
    # one of a's slots passes: a is over its half share and must wait; b gets the slot
    later = POLICY.interval_s + 0.01
    _, for_a = reserve_transition(state, "a", later, POLICY)
    assert isinstance(for_a, Wait) and for_a.reason == "fair_share"
    _, for_b = reserve_transition(state, "b", later, POLICY)
    assert isinstance(for_b, Grant)


def test_a_user_turned_away_is_written_once_per_third_of_the_ttl() -> None:
    full = QuotaState(next_slot=100.0)
    changed, _ = reserve_transition(full, "b", 0.0, POLICY)
    assert changed is not None and "b" in changed.waiting
    again, decision = reserve_transition(changed, "b", 1.0, POLICY)
    assert again is None and isinstance(decision, Wait)  # a read, no write


def test_hold_moves_the_schedule_and_never_back() -> None:
    held = hold_transition(QuotaState(next_slot=5.0), until=50.0)
    assert held is not None and held.next_slot == 50.0
    assert hold_transition(held, until=20.0) is None
    _, decision = reserve_transition(held, "a", 45.0, POLICY)
    assert isinstance(decision, Grant) and decision.at == 50.0


def test_state_round_trips_through_a_document() -> None:
    state = QuotaState(next_slot=3.5, slots={"a": (1.0, 1.5)}, waiting={"b": 0.5})
    assert QuotaState.from_doc(state.to_doc()) == state
    assert QuotaState.from_doc(None) == QuotaState()


# -- a simulation of workers over the rules ---------------------------------------------------


@dataclass
class Simulation:
    """Workers that each take a task, ask for a slot, call the model for ``latency`` seconds."""

    policy: QuotaPolicy
    latency: float = 2.0
    seed: int = 7
    state: QuotaState = field(default_factory=QuotaState)
    calls: list[tuple[float, str]] = field(default_factory=list)  # (slot start, user)
    done: dict[str, float] = field(default_factory=dict)  # user → when its last call ended

    def run(self, users: dict[str, tuple[float, int, int]]) -> None:
        """users: name → (arrival time, tasks, concurrent workers)."""
        rng = random.Random(self.seed)
        left = {u: tasks for u, (_, tasks, _) in users.items()}
        events: list[tuple[float, int, str]] = []
        for n, (user, (arrival, tasks, workers)) in enumerate(users.items()):
            for w in range(min(tasks, workers)):
                heapq.heappush(events, (arrival + 0.001 * w, n * 1000 + w, user))
                left[user] -= 1
        while events:
            now, worker, user = heapq.heappop(events)
            changed, decision = reserve_transition(self.state, user, now, self.policy)
            self.state = changed or self.state
            if isinstance(decision, Wait):
                jitter = rng.uniform(0, min(self.policy.horizon_s / 4, 2.0))
                heapq.heappush(events, (now + decision.retry_in + jitter, worker, user))
                continue
            self.calls.append((decision.at, user))
            ended = decision.at + self.latency
            self.done[user] = max(self.done.get(user, 0.0), ended)
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
    # within horizon + 4 x 2 slots of arriving, long before a's batch drains (~100 s).
    b_starts = sorted(at for at, user in sim.calls if user == "b")
    assert b_starts[-1] - 20.0 <= policy.horizon_s + 8 * policy.interval_s + 2.0
    assert sim.done["a"] > 95.0
    assert sim.done["b"] < sim.done["a"] - 60.0


def test_shared_users_get_equal_shares_and_the_quota_is_used() -> None:
    policy = QuotaPolicy(rpm=120, horizon_s=10.0)
    sim = Simulation(policy, latency=1.0)
    sim.run({"a": (0.0, 200, 40), "b": (0.0, 200, 10)})
    starts = sorted(at for at, _ in sim.calls)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= policy.interval_s - 1e-9  # never faster than the quota
    # while both have work, a slot is never left empty and they alternate fairly
    window = [user for at, user in sorted(sim.calls) if at < 150.0]
    assert max(gaps[: len(window) - 1]) == pytest.approx(policy.interval_s)
    share_b = window.count("b") / len(window)
    assert 0.45 <= share_b <= 0.55, share_b
    used = len(starts) / ((starts[-1] - starts[0]) / policy.interval_s + 1)
    assert used >= 0.99


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
    for _ in range(4):
        gate._update("m", lambda s: reserve_transition(s, "x", clock.time(), gate.policy))
    before = clock.time()
    assert gate.acquire("m", "u", max_wait_s=0.1) is None
    assert clock.time() - before <= 0.1


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
    assert gate._states["m"].next_slot == pytest.approx(1007.0)
    other = GatedModel(model, gate, "someone else", max_wait_s=30)
    other.generate_image(_request())
    assert clock.time() >= 1007.0  # the other user's call also waited out the hold
