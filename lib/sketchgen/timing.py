"""One delivery's time budget, the sketch lease and the queue's redelivery, derived in one place.

The numbers are defined once, in ``infra/functions.yaml`` (``delivery:``), which Terraform
reads (``local.delivery``) and ``make dev`` reads (:mod:`dev.definition`); this module is the
arithmetic both sides follow (Terraform's locals repeat it in HCL, and
``tests/deploy/test_lease_timing.py`` evaluates them against :class:`DeliveryTiming`). No
file is read here: the deployed functions get the results as variables
(``SKETCHGEN_LEASE_S``, ``SKETCHGEN_LEASE_WAIT_S``, ``SKETCHGEN_QUOTA_WAIT_S``,
``SKETCHGEN_WORKER_OVERHEAD_S``, beside ``SKETCHGEN_MODEL_TIMEOUT_S``).

A delivery of a sketch message:

1. claims the sketch (a lease of ``lease_s``), waiting up to ``lease_wait_s`` for another
   delivery's lease to end;
2. waits up to ``quota_wait_s`` for a model slot; none: it gives the sketch back and answers
   "later", and the subscription's retry policy (``minimum_backoff_s`` doubling up to
   ``maximum_backoff_s``) spaces the next delivery out;
3. makes up to two model calls of ``model_timeout_s`` each, then records and uploads
   (``worker_overhead_s``).

That is the request's timeout (``worker_timeout_s``) and the push's ack deadline; steps 2 and
3, all a delivery may spend after its claim, are ``hold_max_s`` (:func:`hold_max_s`). The
lease is short (``lease_s``) and the live worker renews it every ``lease_renew_s`` (a third of
it: :func:`lease_renew_s`) while the work it holds the sketch for runs, for at most
``hold_max_s`` (docs/decisions/0069, 0073): a live worker keeps its sketch however long it
draws within its budget; a dead one's lease runs out at most ``lease_s`` after its last
renewal; a hung one (its thread stuck in a call past the request's timeout, which Cloud Run
answers without stopping the thread) gives the sketch back once ``hold_max_s`` has passed.
A worker that dies at any point — even right after its claim, when Cloud Run answers the push
at once with an error — is redelivered no sooner than ``minimum_backoff_s`` later, and that
delivery waits out what is left of the lease (at most ``lease_s - minimum_backoff_s``) within
its ``lease_wait_s`` and takes the sketch over: the next delivery, not one of the ones after
it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

__all__ = [
    "RENEWALS_PER_LEASE",
    "DeliveryTiming",
    "hold_max_s",
    "lease_renew_s",
    "queue_delivery_attempts",
]

# A live worker renews its lease this many times a lease: two renewals in a row may fail (or
# be slow, a contended write retried) and the lease still holds.
RENEWALS_PER_LEASE = 3


def lease_renew_s(lease_s: float) -> float:
    """How often the worker holding a ``lease_s`` lease renews it: the one rule, used by the
    worker (:class:`sketchgen.services.config.ServiceConfig`) and :class:`DeliveryTiming`."""
    return lease_s / RENEWALS_PER_LEASE


def hold_max_s(*, quota_wait_s: float, model_timeout_s: float, worker_overhead_s: float) -> float:
    """The longest a delivery keeps renewing its lease for one work (a model slot's wait, the
    drawing): all it may spend after its claim — a slot's wait, two model calls and the
    overhead. A work still running then has hung, and the sketch is given back. The one rule,
    used by the worker (:class:`sketchgen.services.config.ServiceConfig`) and
    :class:`DeliveryTiming`."""
    return quota_wait_s + 2 * model_timeout_s + worker_overhead_s


@dataclass(frozen=True, slots=True)
class DeliveryTiming:
    model_timeout_s: float
    lease_wait_s: float
    quota_wait_s: float
    worker_overhead_s: float
    lease_s: float  # the claim's lease, renewed every lease_renew_s while the worker's work runs
    ack_deadline_max_s: float  # Pub/Sub's ceiling for a push's ack deadline
    minimum_backoff_s: float  # the subscription's retry policy
    maximum_backoff_s: float

    @classmethod
    def from_definition(
        cls, delivery: Mapping[str, Any], *, model_timeout_s: float
    ) -> DeliveryTiming:
        """From the ``delivery:`` numbers of ``infra/functions.yaml`` (every one required)."""
        names = {f.name for f in fields(cls)} - {"model_timeout_s"}
        missing, unknown = names - set(delivery), set(delivery) - names
        if missing or unknown:
            raise ValueError(
                f"delivery timing: missing {sorted(missing)}, unknown {sorted(unknown)}"
            )
        return cls(model_timeout_s=float(model_timeout_s), **{k: float(delivery[k]) for k in names})

    @property
    def worker_timeout_s(self) -> float:
        """The request's timeout: the longest a delivery runs (the claim's wait for another's
        lease, then all it may spend holding the sketch)."""
        return self.lease_wait_s + self.hold_max_s

    @property
    def hold_max_s(self) -> float:
        """How long the worker renews its lease for one work at most (docs/decisions/0073)."""
        return hold_max_s(
            quota_wait_s=self.quota_wait_s,
            model_timeout_s=self.model_timeout_s,
            worker_overhead_s=self.worker_overhead_s,
        )

    @property
    def ack_deadline_s(self) -> float:
        return self.worker_timeout_s

    @property
    def lease_renew_s(self) -> float:
        """How often the live worker renews its lease (a write on the sketch's document)."""
        return lease_renew_s(self.lease_s)

    @property
    def model_timeout_max_s(self) -> float:
        """The longest model call that keeps the request within Pub/Sub's ack deadline."""
        rest = self.lease_wait_s + self.quota_wait_s + self.worker_overhead_s
        return float(math.floor((self.ack_deadline_max_s - rest) / 2))

    def backoff_s(self, deliveries: int) -> float:
        """How long the queue waits before delivering again a message whose ``deliveries``-th
        delivery was refused (Pub/Sub's exponential retry policy: doubling from the minimum,
        capped at the maximum)."""
        doubled: float = self.minimum_backoff_s * 2.0 ** max(0, deliveries - 1)
        return min(self.maximum_backoff_s, doubled)

    def problems(self) -> list[str]:
        """What breaks the hand-over; empty when the timing holds."""
        found = []
        if self.worker_timeout_s > self.ack_deadline_max_s:
            found.append(
                f"the worker's budget {self.worker_timeout_s:g} s exceeds Pub/Sub's ack deadline "
                f"ceiling {self.ack_deadline_max_s:g} s (model_timeout_s <= "
                f"{self.model_timeout_max_s:g})"
            )
        if self.lease_s <= 0 or self.lease_renew_s >= self.lease_s:
            found.append("the lease must be positive and renewed within it")
        if self.minimum_backoff_s + self.lease_wait_s < self.lease_s:
            # A worker that dies right after its claim (or a renewal) is pushed again after
            # the minimum backoff: that delivery must outwait the whole lease.
            found.append(
                "the delivery after a dead worker's cannot wait out its lease: "
                f"{self.minimum_backoff_s:g} + {self.lease_wait_s:g} < {self.lease_s:g}"
            )
        if not 0 < self.minimum_backoff_s <= self.maximum_backoff_s <= 600:
            found.append("the retry policy's backoff must be 0 < minimum <= maximum <= 600 s")
        return found


def queue_delivery_attempts(worker_draws: int) -> int:
    """Deliveries the queue makes of a message before it dead-letters it.

    The worker counts the draws it really made (``SKETCHGEN_MAX_DELIVERIES``) and fails a
    sketch after them itself; the queue also counts what is no draw (a push Cloud Run refused,
    a delivery that found no model slot in time and answered "later"), so it allows four times
    as many, at most Pub/Sub's 100 (Terraform: ``local.subscription_delivery_attempts``).
    """
    return min(100, 4 * worker_draws)
