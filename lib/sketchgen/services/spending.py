"""Spend control at the service's edges: admit a job (plan, daily images, active jobs),
settle it when it is finalised, and report a user's usage. The rules are in
:mod:`sketchgen.spend`; the ledger applies them atomically across instances.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sketchgen.ceiling import DeploymentCeiling
from sketchgen.errors import LimitError, NotEntitledError
from sketchgen.jobs import JobRecord
from sketchgen.logs import get_logger, log_context
from sketchgen.pricing import CallKind, price_per_call, price_per_image
from sketchgen.spend import (
    PLANS,
    Account,
    CallCharge,
    Limits,
    Reservation,
    UsageDoc,
    UsageLedger,
    charge_calls_transition,
    reserve_transition,
    seconds_to_next_day,
    utc_day,
)

__all__ = ["SpendControl", "SpendLimits", "job_cost_usd"]

log = get_logger(__name__)

# A busy user's jobs end within a minute or two; asking again sooner is usually refused.
_ACTIVE_RETRY_AFTER_S = 30


@dataclass(frozen=True, slots=True)
class SpendLimits:
    """The deployment's per-user defaults (SKETCHGEN_USER_*, through the bootstrap)."""

    daily_images: int = 200
    active_jobs: int = 3


@dataclass(frozen=True, slots=True)
class _Admission:
    result: Reservation
    limits: Limits


@dataclass(frozen=True, slots=True)
class _CallAdmission:
    charge: CallCharge
    limits: Limits


def job_cost_usd(job: JobRecord) -> float:
    return round(sum(s.cost_usd or 0.0 for s in job.sketches.values()), 6)


def _deployment_exhausted(ceiling: DeploymentCeiling) -> LimitError:
    return LimitError(
        "deployment_budget_exhausted",
        f"the service has reached its spending ceiling for today ({ceiling.ceiling_usd:g} "
        "USD across all users); try again after 00:00 UTC",
        field="deployment",
        retry_after_s=seconds_to_next_day(datetime.now(UTC)),
    )


class SpendControl:
    def __init__(
        self,
        ledger: UsageLedger,
        limits: SpendLimits | None = None,
        *,
        ceiling: DeploymentCeiling | None = None,
    ) -> None:
        self.ledger = ledger
        self.limits = limits or SpendLimits()
        # Above every user's budget: the deployment's USD a UTC day (docs/decisions/0021).
        self.ceiling = ceiling

    def _limits(self, account: Account) -> Limits:
        base = Limits(daily_images=self.limits.daily_images, active_jobs=self.limits.active_jobs)
        return base.for_account(account)

    def admit(
        self,
        uid: str,
        *,
        model: str,
        image_size: str,
        job_id: str,
        images: int,
        counts_active: bool = True,
        finished: Callable[[Sequence[str]], list[JobRecord]] | None = None,
    ) -> None:
        """Admit ``job_id`` for ``uid``: its plan must include ``model`` at ``image_size``
        (else :class:`NotEntitledError` naming the field) and its ``images`` and active-job
        slot are reserved (else :class:`LimitError`). Nothing is written when refused. The
        account and the usage are read together and the usage written under a precondition.

        ``finished`` (job ids → the ones that have ended) heals charges whose settlement was
        lost (a finaliser that died): at the cap, those are settled and the admission tried
        once more.
        """
        now = datetime.now(UTC)

        def decide(account: Account, usage: UsageDoc) -> tuple[UsageDoc | None, _Admission]:
            refusal = PLANS[account.plan].refusal(model, image_size)
            if refusal is not None:
                field, message = refusal
                raise NotEntitledError(f"{message}; your plan is {account.plan!r}", field=field)
            limits = self._limits(account)
            changed, result = reserve_transition(
                usage, job_id, images, limits, now, counts_active=counts_active
            )
            return changed, _Admission(result, limits)

        admission = self.ledger.admit(uid, decide, limits=self._limits)
        if admission.result.refused == "too_many_active_jobs" and finished is not None:
            ended = finished(admission.result.active_job_ids)
            if ended:
                for job in ended:
                    self.settle_job(job)
                admission = self.ledger.admit(uid, decide, limits=self._limits)
        result, limits = admission.result, admission.limits
        if result.refused is None and self.ceiling is not None:
            # After the user's own limits (a user at their cap must not use up the
            # deployment's ceiling by asking again); the dearest price: the job may draw
            # every image interactively.
            usd = images * price_per_image(model, image_size)
            if not self.ceiling.charge(usd):
                self.release(uid, job_id, images)
                with log_context(ceiling_usd=self.ceiling.ceiling_usd, refused_usd=usd):
                    log.warning("deployment ceiling reached: refused a job of %d images", images)
                raise _deployment_exhausted(self.ceiling)
        if result.refused == "too_many_active_jobs":
            raise LimitError(
                "too_many_active_jobs",
                f"you have {len(result.active_job_ids)} active jobs, the limit is "
                f"{limits.active_jobs}; wait for one to finish or cancel one",
                field="active_jobs",
                retry_after_s=_ACTIVE_RETRY_AFTER_S,
            )
        if result.refused == "budget_exhausted":
            raise LimitError(
                "budget_exhausted",
                f"this job needs {images} images and {result.images_left} of your "
                f"{limits.daily_images} for today are left (the day ends at 00:00 UTC)",
                field="num_images",
                retry_after_s=seconds_to_next_day(datetime.now(UTC)),
            )

    def charge_calls(
        self,
        uid: str,
        calls: Mapping[CallKind, Sequence[str]],
        *,
        uploads: int = 0,
        max_uploads: int | None = None,
        field: str = "image",
    ) -> float:
        """Charge the model calls about to be sent for ``uid`` (kind → the model of each
        call), before they are sent: each is one of the day's images and costs its row in
        the price table. ``uploads`` references are counted towards ``max_uploads`` a day.
        Free calls (the offline embedding) are not counted. Refused with :class:`LimitError`
        (nothing charged) past the user's day or the deployment's ceiling. Returns the cost."""
        priced = {
            kind: [price_per_call(kind, model) for model in models]
            for kind, models in calls.items()
        }
        counts: dict[str, int] = {
            kind: n for kind, prices in priced.items() if (n := sum(1 for p in prices if p > 0))
        }
        cost = round(sum(sum(prices) for prices in priced.values()), 6)
        if not counts and not uploads:
            return 0.0
        now = datetime.now(UTC)

        def decide(account: Account, usage: UsageDoc) -> tuple[UsageDoc | None, _CallAdmission]:
            limits = self._limits(account)
            changed, charge = charge_calls_transition(
                usage, counts, cost, limits, now, uploads=uploads, max_uploads=max_uploads
            )
            return changed, _CallAdmission(charge, limits)

        admission = self.ledger.admit(uid, decide, limits=self._limits)
        charge, limits = admission.charge, admission.limits
        retry_after = seconds_to_next_day(datetime.now(UTC))
        if charge.refused == "too_many_uploads":
            raise LimitError(
                "too_many_uploads",
                f"at most {max_uploads} reference uploads a day, deleted ones included "
                "(the day ends at 00:00 UTC)",
                field="references",
                retry_after_s=retry_after,
            )
        if charge.refused == "budget_exhausted":
            raise LimitError(
                "budget_exhausted",
                f"this needs {sum(counts.values())} model calls and {charge.images_left} of "
                f"your {limits.daily_images} for today are left (the day ends at 00:00 UTC)",
                field=field,
                retry_after_s=retry_after,
            )
        if self.ceiling is not None and not self.ceiling.charge(cost):
            self.ledger.refund_calls(uid, counts, cost, uploads=uploads)
            with log_context(ceiling_usd=self.ceiling.ceiling_usd, refused_usd=cost):
                log.warning(
                    "deployment ceiling reached: refused %s",
                    ", ".join(f"{n} {kind}" for kind, n in counts.items()),
                )
            raise _deployment_exhausted(self.ceiling)
        return cost

    def deployment(self) -> dict[str, Any]:
        """The operator's view of today's ceiling (``sketchgen usage --deployment``)."""
        if self.ceiling is None:
            return {"day": utc_day(datetime.now(UTC)), "ceiling_usd": None}
        return self.ceiling.status().as_dict()

    def release(self, uid: str, job_id: str, images: int) -> None:
        """Undo a reservation whose job was not created (or was an idempotent replay)."""
        self.ledger.settle(uid, job_id, refunded=images, cost_usd=0.0)

    def admit_extra_call(self, uid: str, job_id: str, *, usd: float) -> bool:
        """A sketch's model call beyond the one reserved for it at submission (a stricter
        re-ask, a redraw), costing ``usd``: admitted against the user's day and the
        deployment's ceiling as it is sent (one write to each; rare)."""
        # The ceiling first: a call the user's day then refuses leaves the ceiling charged
        # for one call not sent (stricter on our money), never a user charged for one.
        if self.ceiling is not None and not self.ceiling.charge(usd):
            with log_context(ceiling_usd=self.ceiling.ceiling_usd, refused_usd=usd):
                log.warning("deployment ceiling reached: refused a further model call")
            return False
        limits = self._limits(self.ledger.account(uid))
        admitted = self.ledger.extra_call(uid, job_id, limits)
        if not admitted:
            log.info("no budget left for another model call of job %s", job_id)
        return admitted

    def settle_job(self, job: JobRecord) -> bool:
        """Settle a finalised job once: every model call sent stays charged (a cancel stops
        only future calls); the images reserved for sketches that never made a call are
        given back, and the job's cost is added. True for the call that settled it."""
        refunded = sum(1 for s in job.sketches.values() if s.model_calls == 0)
        settled = self.ledger.settle(
            job.owner_uid, job.job_id, refunded=refunded, cost_usd=job_cost_usd(job)
        )
        if settled and refunded:
            log.info("refunded %d of %d images to %s", refunded, len(job.sketches), job.owner_uid)
        return settled

    def usage(self, uid: str) -> dict[str, Any]:
        """``GET /v1/usage``: today's figures for ``uid``."""
        account = self.ledger.account(uid)
        limits = self._limits(account)
        today = utc_day(datetime.now(UTC))
        doc = self.ledger.usage(uid).on(today)
        return {
            "day": today,
            "plan": account.plan,
            "images_used": doc.images_used,
            "images_limit": limits.daily_images,
            "cost_usd_today": round(doc.cost_usd, 6),
            # Describer and embedder calls (style uploads, reference edits), in images_used
            # and cost_usd_today too.
            "model_calls": dict(sorted(doc.calls.items())),
            "model_calls_cost_usd": round(doc.calls_cost_usd, 6),
            "references_added": doc.references_added,
            "active_jobs": len(doc.active_job_ids),
            "active_jobs_limit": limits.active_jobs,
            "models": sorted(PLANS[account.plan].models or ()) or None,
            "image_sizes": sorted(PLANS[account.plan].image_sizes or ()) or None,
        }

    def set_account(
        self,
        uid: str,
        *,
        plan: str | None = None,
        daily_images: int | None = None,
        active_jobs: int | None = None,
    ) -> Account:
        """The admin's change to one account (the CLI's ``accounts set``); unchanged fields
        are kept."""
        current = self.ledger.account(uid)
        update: dict[str, Any] = {}
        if plan is not None:
            update["plan"] = plan
        if daily_images is not None:
            update["daily_images"] = daily_images
        if active_jobs is not None:
            update["active_jobs"] = active_jobs
        account = Account.model_validate({**current.model_dump(), **update})
        self.ledger.set_account(uid, account)
        return account
