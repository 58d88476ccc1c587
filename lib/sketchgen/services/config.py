"""The service's tunables, shared by every capability (each reads only the ones it needs)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from sketchgen.generate.models import DEFAULT_MODEL
from sketchgen.generate.retry import RetryPolicy
from sketchgen.timing import hold_max_s, lease_renew_s

__all__ = ["ServiceConfig"]


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    # A claim's lease; the worker renews it every third of it (``lease_renew_s``) while the
    # work it holds the sketch for runs, so it may be short (deployed: 60 s, docs/decisions/
    # 0069), and for at most ``hold_max_s``: a work still running then has hung (0073).
    lease_s: float = 300.0
    # A delivery that finds the sketch leased waits (up to this long) for the lease to end
    # rather than nacking at once: queues redeliver faster than a dead worker's lease runs
    # out, and every nack would spend one of the message's few delivery attempts.
    lease_wait_s: float = 330.0
    lease_poll_s: float = 1.0
    max_deliveries: int = 5
    # A job whose sketches all ended this long ago and is not final lost its finaliser: a
    # delivery (or the sweep) that finds it finalises it. Sooner, the finaliser may be at work.
    finalize_grace_s: float = 60.0
    retention: timedelta = timedelta(days=30)
    # In one delivery a transient error gets one quick retry; beyond that the queue's own
    # backoff (Pub/Sub retry policy) spaces the attempts out without holding a worker.
    retry: RetryPolicy = field(
        default_factory=lambda: RetryPolicy(max_attempts=2, initial_delay_s=1.0, max_delay_s=10.0)
    )
    # With a quota gate, how long a delivery waits for a model slot before it goes back to
    # the queue as a fresh message (waiting for quota is not a failed delivery).
    quota_wait_s: float = 60.0
    # One model call's timeout (the model adapter's) and what a delivery spends around its
    # calls (claim, plan, record, upload): with the slot's wait, what bounds ``hold_max_s``.
    model_timeout_s: float = 120.0
    worker_overhead_s: float = 60.0
    # While the model draws, the worker re-reads the job this often: a cancelled sketch is
    # abandoned then (the delivery acked, the call's late result dropped) rather than waited
    # for (docs/decisions/0014-async-stream-function.md).
    cancel_poll_s: float = 1.0
    # What a request that names no model gets (GEMINI_MODEL, through the bootstrap).
    default_model: str = DEFAULT_MODEL

    @property
    def lease_renew_s(self) -> float:
        """How often a delivery renews the lease it holds (sketchgen.timing's one rule)."""
        return lease_renew_s(self.lease_s)

    @property
    def hold_max_s(self) -> float:
        """The longest a delivery renews its lease for one work (sketchgen.timing's rule)."""
        return hold_max_s(
            quota_wait_s=self.quota_wait_s,
            model_timeout_s=self.model_timeout_s,
            worker_overhead_s=self.worker_overhead_s,
        )
