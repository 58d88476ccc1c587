"""One contract for every usage ledger (docs/decisions/0012): memory, SQLite and Firestore on
the emulator keep the same counters, refuse the same way and settle each job once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sketchgen.adapters.local.usage_ledger import MemoryUsageLedger, SqliteUsageLedger
from sketchgen.errors import NotEntitledError
from sketchgen.spend import (
    PLANS,
    Account,
    Limits,
    UsageDoc,
    UsageLedger,
    reserve_transition,
)

LIMITS = Limits(daily_images=10, active_jobs=2)
NOW = datetime(2026, 12, 3, 12, tzinfo=UTC)


@pytest.fixture(params=["memory", "sqlite", "firestore"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> UsageLedger:
    if request.param == "memory":
        return MemoryUsageLedger()
    if request.param == "sqlite":
        return SqliteUsageLedger(tmp_path / "usage.sqlite3")
    request.getfixturevalue("firestore_emulator")
    from google.cloud import firestore

    from sketchgen.adapters.gcp.firestore_usage_ledger import FirestoreUsageLedger

    return FirestoreUsageLedger(firestore.Client(project=f"ledger-{uuid.uuid4().hex[:8]}"))


def test_reserve_settle_and_the_day_roll_over(ledger: UsageLedger) -> None:
    assert ledger.reserve("u", "a", 6, LIMITS, now=NOW).refused is None
    refused = ledger.reserve("u", "b", 5, LIMITS, now=NOW)
    assert refused.refused == "budget_exhausted" and refused.images_left == 4
    assert ledger.reserve("u", "b", 4, LIMITS, now=NOW).refused is None
    capped = ledger.reserve("u", "c", 0, LIMITS, now=NOW)
    assert capped.refused == "too_many_active_jobs" and capped.active_job_ids == ("a", "b")
    assert ledger.settle("u", "a", refunded=2, cost_usd=0.156, now=NOW)
    assert not ledger.settle("u", "a", refunded=2, cost_usd=0.156, now=NOW)  # once
    usage = ledger.usage("u")
    assert usage.images_used == 8 and usage.cost_usd == pytest.approx(0.156)
    assert usage.active_job_ids == ["b"] and usage.day == "2026-12-03"
    # Tomorrow: a full day of images; b still holds a slot until it is settled.
    tomorrow = NOW + timedelta(days=1)
    assert ledger.reserve("u", "c", 10, LIMITS, now=tomorrow).refused is None
    assert ledger.usage("u").images_used == 10 and ledger.usage("u").active_job_ids == ["b", "c"]
    assert ledger.usage("other").images_used == 0


def test_accounts_and_one_admission_over_account_and_usage(ledger: UsageLedger) -> None:
    assert ledger.account("u") == Account()
    ledger.set_account("u", Account(plan="pro", daily_images=3))
    assert ledger.account("u") == Account(plan="pro", daily_images=3)

    def admit(account: Account, usage: UsageDoc) -> tuple[UsageDoc | None, str]:
        if PLANS[account.plan].refusal("pro", "4K") is not None:
            raise NotEntitledError("not in your plan", field="model")
        limits = LIMITS.for_account(account)
        changed, result = reserve_transition(usage, "j", 3, limits, NOW)
        return changed, str(result.refused)

    def limits(account: Account) -> Limits:
        return LIMITS.for_account(account)

    assert ledger.admit("u", admit, limits=limits) == "None"
    assert ledger.usage("u").images_used == 3
    with pytest.raises(NotEntitledError):
        ledger.admit("free-user", admit, limits=limits)
    assert ledger.usage("free-user") == UsageDoc()  # a refusal wrote nothing


def test_model_calls_and_uploads_are_charged_refused_and_refunded_alike(
    ledger: UsageLedger,
) -> None:
    """The describer and embedder (docs/decisions/0020): one of the day's images per call,
    refused past it or past the day's uploads, refunded only when never sent."""
    from sketchgen.spend import charge_calls_transition

    def charge(calls: dict[str, int], uploads: int = 0) -> str | None:
        return ledger.admit(
            "u",
            lambda _account, doc: charge_calls_transition(
                doc, calls, 0.001 * sum(calls.values()), LIMITS, NOW, uploads=uploads, max_uploads=2
            ),
            limits=lambda _account: LIMITS,
        ).refused

    assert charge({"describe": 1, "embed": 1}, uploads=1) is None
    assert ledger.reserve("u", "job", 6, LIMITS, now=NOW).refused is None  # 8 of 10 used
    assert charge({"describe": 1, "embed": 2}) == "budget_exhausted"  # 3 > 2 left
    assert charge({"embed": 1}, uploads=1) is None
    assert charge({"embed": 1}, uploads=1) == "too_many_uploads"
    usage = ledger.usage("u")
    assert usage.images_used == 9 and usage.calls == {"describe": 1, "embed": 2}
    assert usage.references_added == 2 and usage.calls_cost_usd == pytest.approx(0.003)
    ledger.refund_calls("u", {"embed": 1}, 0.001, uploads=1, now=NOW)
    usage = ledger.usage("u")
    assert usage.images_used == 8 and usage.calls == {"describe": 1, "embed": 1}
    assert usage.references_added == 1 and usage.active_job_ids == ["job"]
    # A new day: the calls and uploads start again from nothing.
    tomorrow = NOW + timedelta(days=1)
    assert ledger.usage("u").on(tomorrow.date().isoformat()).calls == {}


def test_the_days_images_are_used_to_the_last_one_whatever_the_shards(
    ledger: UsageLedger,
) -> None:
    """Reservations, settlements and extra calls that leave the day's images in fragments
    (a sharded ledger holds each shard to a part of the limit): a job is admitted exactly
    when the day has room for it, as with one document, and never past the limit."""
    limits = Limits(daily_images=10, active_jobs=4)
    assert ledger.reserve("u", "a", 3, limits, now=NOW).refused is None
    assert ledger.reserve("u", "b", 3, limits, now=NOW).refused is None
    assert ledger.settle("u", "a", refunded=3, cost_usd=0.0, now=NOW)  # a drew nothing
    assert ledger.reserve("u", "c", 7, limits, now=NOW).refused is None  # 10 of 10
    refused = ledger.reserve("u", "d", 1, limits, now=NOW)
    assert refused.refused == "budget_exhausted" and refused.images_left == 0
    assert not ledger.extra_call("u", "c", limits, now=NOW)
    assert ledger.settle("u", "c", refunded=2, cost_usd=0.195, now=NOW)  # 2 never drawn
    assert ledger.extra_call("u", "b", limits, now=NOW)
    assert ledger.reserve("u", "e", 1, limits, now=NOW).refused is None  # 10 of 10 again
    assert ledger.reserve("u", "f", 1, limits, now=NOW).refused == "budget_exhausted"
    usage = ledger.usage("u")
    assert usage.images_used == 10 and usage.active_job_ids == ["b", "e"]
    assert usage.jobs["b"].images == 4 and usage.cost_usd == pytest.approx(0.195)
    ledger.forget("u", now=NOW)
    assert ledger.usage("u").images_used == 10 and ledger.usage("u").jobs == {}
