"""What every JobStore shares: the ports' methods over one atomic read-modify-write.

A store only has to provide ``_update`` (atomically: read the job, apply a pure transition
from :mod:`sketchgen.jobs`, write the result if there is one) plus creation, reads and
watching. The rules of claiming, finishing and cancelling then hold the same everywhere.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from sketchgen.clock import SYSTEM_CLOCK
from sketchgen.errors import NotFoundError
from sketchgen.jobs import (
    BatchRef,
    CallResult,
    ClaimResult,
    FinishResult,
    JobRecord,
    SketchState,
    call_transition,
    cancel_transition,
    claim_transition,
    complete_transition,
    finish_transition,
    release_transition,
    renew_transition,
    set_batch_transition,
)
from sketchgen.ports import Clock

__all__ = ["TransactionalJobStore"]

T = TypeVar("T")
Transition = Callable[[JobRecord | None], tuple[JobRecord | None, T]]


class TransactionalJobStore(ABC):
    # Leases and deadlines are judged on this clock (a store's constructor takes one).
    clock: Clock = SYSTEM_CLOCK

    @abstractmethod
    def _update(self, job_id: str, transition: Transition[T]) -> T:
        """Atomically apply ``transition`` to the stored job and persist what it returns."""

    @abstractmethod
    def get_job(self, job_id: str) -> JobRecord | None: ...

    def get_sketch(self, job_id: str, index: int) -> SketchState | None:
        """One sketch as :meth:`get_job` shows it, without ``seq`` (a store that keeps each
        sketch in its own document reads just that one and the job's)."""
        job = self.get_job(job_id)
        state = None if job is None else job.sketches.get(str(index))
        return None if state is None else state.model_copy(update={"seq": None})

    def claim_sketch(
        self, job_id: str, index: int, *, worker: str, lease_s: float, now: datetime | None = None
    ) -> ClaimResult:
        at = now or self.clock.now()
        return self._update(job_id, lambda job: claim_transition(job, index, worker, lease_s, at))

    def finish_sketch(
        self,
        job_id: str,
        index: int,
        *,
        worker: str,
        state: SketchState,
        now: datetime | None = None,
    ) -> FinishResult:
        at = now or self.clock.now()
        return self._update(job_id, lambda job: finish_transition(job, index, worker, state, at))

    def release_sketch(
        self, job_id: str, index: int, *, worker: str, error: str | None, refund: bool = False
    ) -> None:
        at = self.clock.now()
        self._update(
            job_id,
            lambda job: (release_transition(job, index, worker, error, at, refund=refund), None),
        )

    def renew_lease(
        self, job_id: str, index: int, *, worker: str, lease_s: float, now: datetime | None = None
    ) -> bool:
        at = now or self.clock.now()
        return self._update(job_id, lambda job: renew_transition(job, index, worker, lease_s, at))

    def count_call(self, job_id: str, index: int, *, worker: str) -> CallResult:
        at = self.clock.now()
        return self._update(job_id, lambda job: call_transition(job, index, worker, at))

    def set_batch(self, job_id: str, batch: BatchRef | None) -> None:
        at = self.clock.now()
        self._update(job_id, lambda job: (set_batch_transition(job, batch, at), None))

    def cancel_job(
        self, job_id: str, now: datetime | None = None, *, running: bool = True
    ) -> FinishResult:
        at = now or self.clock.now()
        return self._update(job_id, lambda job: cancel_transition(job, at, running=running))

    def complete_job(self, job_id: str, *, metadata_path: str | None) -> JobRecord:
        at = self.clock.now()

        def complete(job: JobRecord | None) -> tuple[JobRecord | None, JobRecord]:
            if job is None:
                raise NotFoundError(f"no job {job_id!r}")
            changed = complete_transition(job, metadata_path, at)
            return changed, changed or job

        return self._update(job_id, complete)
