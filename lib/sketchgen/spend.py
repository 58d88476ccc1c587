"""Spend control: plans, per-user limits and the usage ledger's rules.

Each user has one usage document (a row locally; in Firestore and in memory the sum of
shards, :mod:`sketchgen.usage_shards`) holding the current UTC day's counters and the charge
of every job not yet settled::

    {day, images_used, cost_usd, jobs: {job_id: {day, images, at, counts_active}}}

A job *reserves* its ``num_images`` when it is submitted (refused, with nothing written, if
that would pass the day's images or the active-job cap) and is *settled* once, when it is
finalised: the images that never got a billable model answer are given back and its cost is
added. Settling removes the job's charge in the same write, so a second settle (a redelivered
message, a second finaliser) finds nothing to do: refunds happen exactly once. Active jobs are
the unsettled charges that count towards the cap (scheduled regeneration does not:
docs/decisions/0012).

The rules are pure functions over :class:`UsageDoc` (like :mod:`sketchgen.quota`); a ledger
only has to apply them atomically (its port is :class:`UsageLedger`; the stores share
:class:`sketchgen.adapters.usage_ledger_base.TransactionalUsageLedger`). In Firestore (and in
memory) the document is split in shards so that a busy user's makes no hot document; the rules see
their sum (:mod:`sketchgen.usage_shards`, docs/decisions/0051).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from sketchgen.generate.models import resolve_model
from sketchgen.pricing import is_billable

__all__ = [
    "PLANS",
    "Account",
    "CallCharge",
    "JobCharge",
    "Limits",
    "Plan",
    "PlanName",
    "Reservation",
    "UsageDoc",
    "UsageLedger",
    "charge_calls_transition",
    "is_billable",
    "refund_calls_transition",
    "reserve_transition",
    "seconds_to_next_day",
    "settle_transition",
    "utc_day",
]

T = TypeVar("T")
PlanName = Literal["free", "pro"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


@dataclass(frozen=True, slots=True)
class Plan:
    """What a plan may ask for; ``None``: anything."""

    models: frozenset[str] | None
    image_sizes: frozenset[str] | None

    def refusal(self, model: str, image_size: str) -> tuple[str, str] | None:
        """``(field, message)`` for the first thing the plan does not include, or None."""
        model_id = resolve_model(model).id
        if self.models is not None and model_id not in self.models:
            allowed = ", ".join(sorted(self.models))
            return "model", f"model {model_id!r} is not in your plan (allowed: {allowed})"
        if self.image_sizes is not None and image_size.upper() not in self.image_sizes:
            allowed = ", ".join(sorted(self.image_sizes))
            return "image_size", f"image size {image_size} is not in your plan (allowed: {allowed})"
        return None


# free: the flash models at 1K and 2K; pro: every model and size.
PLANS: dict[str, Plan] = {
    "free": Plan(
        models=frozenset({"gemini-2.5-flash-image", "gemini-3.1-flash-image-preview"}),
        image_sizes=frozenset({"1K", "2K"}),
    ),
    "pro": Plan(models=None, image_sizes=None),
}


class Account(_Model):
    """``accounts/{uid}``: the user's plan and optional per-user overrides of the limits."""

    plan: PlanName = "free"
    daily_images: int | None = Field(default=None, ge=0)
    active_jobs: int | None = Field(default=None, ge=0)

    @classmethod
    def from_doc(cls, doc: dict[str, Any] | None) -> Account:
        return cls.model_validate(doc or {})

    def to_doc(self) -> dict[str, Any]:
        return self.model_dump()


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits that hold for one user (the settings', or the account's overrides)."""

    daily_images: int
    active_jobs: int

    def for_account(self, account: Account) -> Limits:
        return Limits(
            daily_images=(
                account.daily_images if account.daily_images is not None else self.daily_images
            ),
            active_jobs=(
                account.active_jobs if account.active_jobs is not None else self.active_jobs
            ),
        )


class JobCharge(_Model):
    day: str  # the UTC day its images were counted on
    images: int
    at: datetime
    counts_active: bool = True


class UsageDoc(_Model):
    day: str = ""
    images_used: int = 0
    cost_usd: float = 0.0
    jobs: dict[str, JobCharge] = Field(default_factory=dict)
    # Paid calls that draw no image (describer, embedder: docs/decisions/0020), by kind; each
    # is in images_used too. References uploaded today, whatever became of them since.
    calls: dict[str, int] = Field(default_factory=dict)
    calls_cost_usd: float = 0.0
    references_added: int = 0

    @classmethod
    def from_doc(cls, doc: dict[str, Any] | None) -> UsageDoc:
        return cls.model_validate(doc or {})

    def to_doc(self) -> dict[str, Any]:
        return self.model_dump(mode="python")

    def on(self, day: str) -> UsageDoc:
        """The document as of ``day``: a new day starts with no images used and no cost."""
        if self.day == day:
            return self
        return UsageDoc(day=day, jobs=self.jobs)

    @property
    def active_job_ids(self) -> list[str]:
        return sorted(j for j, charge in self.jobs.items() if charge.counts_active)


@dataclass(frozen=True, slots=True)
class Reservation:
    """What :func:`reserve_transition` decided. ``refused`` is None when the job may run."""

    refused: Literal["budget_exhausted", "too_many_active_jobs"] | None
    images_left: int
    active_job_ids: tuple[str, ...] = ()


def utc_day(now: datetime) -> str:
    return now.astimezone(UTC).date().isoformat()


def seconds_to_next_day(now: datetime) -> int:
    """Until the day's images are available again (UTC midnight), at least one second."""
    tomorrow = date.fromisoformat(utc_day(now)) + timedelta(days=1)
    midnight = datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=UTC)
    return max(1, int((midnight - now).total_seconds()) + 1)


def reserve_transition(
    doc: UsageDoc,
    job_id: str,
    images: int,
    limits: Limits,
    now: datetime,
    *,
    counts_active: bool = True,
) -> tuple[UsageDoc | None, Reservation]:
    """Reserve ``images`` of today's budget and an active-job slot for ``job_id``.

    Refused (nothing written) if the active jobs are at the cap or the images would pass the
    day's limit. Reserving the same job twice is a no-op.
    """
    day = utc_day(now)
    current = doc.on(day)
    left = max(0, limits.daily_images - current.images_used)
    if job_id in current.jobs:
        return None, Reservation(refused=None, images_left=left)
    active = tuple(current.active_job_ids)
    if counts_active and len(active) >= limits.active_jobs:
        return None, Reservation("too_many_active_jobs", left, active)
    if images > left:
        return None, Reservation("budget_exhausted", left, active)
    charge = JobCharge(day=day, images=images, at=now, counts_active=counts_active)
    changed = current.model_copy(
        update={
            "images_used": current.images_used + images,
            "jobs": {**current.jobs, job_id: charge},
        }
    )
    return changed, Reservation(refused=None, images_left=left - images)


@dataclass(frozen=True, slots=True)
class CallCharge:
    """What :func:`charge_calls_transition` decided. ``refused`` is None when charged."""

    refused: Literal["budget_exhausted", "too_many_uploads"] | None
    images_left: int
    uploads_left: int | None = None


def charge_calls_transition(
    doc: UsageDoc,
    calls: Mapping[str, int],
    cost_usd: float,
    limits: Limits,
    now: datetime,
    *,
    uploads: int = 0,
    max_uploads: int | None = None,
) -> tuple[UsageDoc | None, CallCharge]:
    """Charge model calls that are about to be sent (each one of the day's images) and count
    ``uploads`` references towards the day's ``max_uploads``. Refused, nothing written, if
    either would pass its limit: a call is paid the moment it is sent, so it is charged first."""
    current = doc.on(utc_day(now))
    count = sum(calls.values())
    left = max(0, limits.daily_images - current.images_used)
    uploads_left = None if max_uploads is None else max(0, max_uploads - current.references_added)
    if uploads and uploads_left is not None and uploads > uploads_left:
        return None, CallCharge("too_many_uploads", left, uploads_left)
    if count > left:
        return None, CallCharge("budget_exhausted", left, uploads_left)
    merged = dict(current.calls)
    for kind, n in calls.items():
        merged[kind] = merged.get(kind, 0) + n
    changed = current.model_copy(
        update={
            "images_used": current.images_used + count,
            "cost_usd": round(current.cost_usd + cost_usd, 6),
            "calls": merged,
            "calls_cost_usd": round(current.calls_cost_usd + cost_usd, 6),
            "references_added": current.references_added + uploads,
        }
    )
    left_after = None if uploads_left is None else uploads_left - uploads
    return changed, CallCharge(None, left - count, left_after)


def refund_calls_transition(
    doc: UsageDoc, calls: Mapping[str, int], cost_usd: float, now: datetime, *, uploads: int = 0
) -> tuple[UsageDoc | None, None]:
    """Undo a :func:`charge_calls_transition` whose calls were never sent (the deployment's
    ceiling refused them after the user's budget took them). Only today's counters."""
    current = doc.on(utc_day(now))
    merged = {k: max(0, n - calls.get(k, 0)) for k, n in current.calls.items()}
    changed = current.model_copy(
        update={
            "images_used": max(0, current.images_used - sum(calls.values())),
            "cost_usd": max(0.0, round(current.cost_usd - cost_usd, 6)),
            "calls": {k: n for k, n in merged.items() if n},
            "calls_cost_usd": max(0.0, round(current.calls_cost_usd - cost_usd, 6)),
            "references_added": max(0, current.references_added - uploads),
        }
    )
    return changed, None


def settle_transition(
    doc: UsageDoc, job_id: str, refunded: int, cost_usd: float, now: datetime
) -> tuple[UsageDoc | None, bool]:
    """End ``job_id``'s charge: give back ``refunded`` images and add ``cost_usd`` to the day
    it was counted on (if that is still today). True for the one call that settled it."""
    current = doc.on(utc_day(now))
    charge = current.jobs.get(job_id)
    if charge is None:
        return None, False
    jobs = {j: c for j, c in current.jobs.items() if j != job_id}
    update: dict[str, Any] = {"jobs": jobs}
    if charge.day == current.day:
        refund = min(max(0, refunded), charge.images)
        update["images_used"] = max(0, current.images_used - refund)
        update["cost_usd"] = round(current.cost_usd + cost_usd, 6)
    return current.model_copy(update=update), True


def extra_call_transition(
    doc: UsageDoc, job_id: str, limits: Limits, now: datetime
) -> tuple[UsageDoc | None, bool]:
    """Admit one model call beyond ``job_id``'s reservation (a sketch's second call: a retry,
    a stricter re-ask, a guard redraw) against today's budget; False (nothing written) if the
    budget is spent. The call is part of the job's charge from now on, never refunded."""
    current = doc.on(utc_day(now))
    if current.images_used + 1 > limits.daily_images:
        return None, False
    jobs = dict(current.jobs)
    charge = jobs.get(job_id)
    if charge is not None and charge.day == current.day:
        jobs[job_id] = charge.model_copy(update={"images": charge.images + 1})
    return current.model_copy(update={"images_used": current.images_used + 1, "jobs": jobs}), True


class UsageLedger(Protocol):
    """The usage-ledger port: usage documents and accounts, the rules above applied
    atomically per user. Stores derive from
    :class:`sketchgen.adapters.usage_ledger_base.TransactionalUsageLedger`, which applies
    every rule over one atomic read-modify-write."""

    def usage(self, uid: str) -> UsageDoc: ...

    def account(self, uid: str) -> Account: ...

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
        """Charge a job's images (refused, nothing written, past the day's images or the
        active-job cap)."""
        ...

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
        ...

    def forget(self, uid: str, *, now: datetime | None = None) -> None:
        """Drop the user's history (unsettled job charges, past days) but keep today's
        counters: a user who deletes their data does not get the day's budget back."""
        ...

    def refund_calls(
        self,
        uid: str,
        calls: Mapping[str, int],
        cost_usd: float,
        *,
        uploads: int = 0,
        now: datetime | None = None,
    ) -> None: ...

    def extra_call(
        self, uid: str, job_id: str, limits: Limits, *, now: datetime | None = None
    ) -> bool: ...

    def settle(
        self, uid: str, job_id: str, *, refunded: int, cost_usd: float, now: datetime | None = None
    ) -> bool:
        """Settle a job once: give back its unbilled images, add its cost (False: nothing
        left to settle)."""
        ...
