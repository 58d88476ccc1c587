"""``InlineTaskQueue``: the in-process queue behind ``sketchgen serve``.

It behaves like the Pub/Sub push subscription it stands in for: at-least-once delivery to a
handler that acks (True) or nacks (False or an exception), redelivery after an exponential
backoff (as the subscription's retry policy: ``backoff_s`` doubling up to ``max_backoff_s``, on
its ``clock``), and a dead-letter list after ``max_deliveries``. Interactive tasks are taken
before batch ones.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sketchgen.clock import SYSTEM_CLOCK
from sketchgen.logs import get_logger, log_context
from sketchgen.ports import Clock, SketchTask

__all__ = ["InlineTaskQueue"]

log = get_logger(__name__)
Handler = Callable[[SketchTask], bool]
_PRIORITY = {"interactive": 0, "batch": 1}


@dataclass(order=True)
class _Item:
    priority: int
    not_before: float
    order: int
    task: SketchTask = field(compare=False)
    deliveries: int = field(default=0, compare=False)


class InlineTaskQueue:
    def __init__(
        self,
        max_workers: int = 8,
        *,
        max_deliveries: int = 5,
        backoff_s: float = 0.5,
        max_backoff_s: float = 600.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.max_deliveries = max_deliveries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.clock = clock
        self.dead_letters: list[SketchTask] = []
        self._handler: Handler | None = None
        self._queue: queue.PriorityQueue[_Item] = queue.PriorityQueue()
        self._order = itertools.count()
        self._pending = 0
        self._idle = threading.Condition()
        self._closed = threading.Event()
        self._workers = [
            threading.Thread(target=self._work, daemon=True, name=f"inline-queue-{i}")
            for i in range(max_workers)
        ]

    def bind(self, handler: Handler) -> None:
        self._handler = handler
        for worker in self._workers:
            worker.start()

    def publish(self, tasks: Sequence[SketchTask]) -> None:
        with self._idle:
            self._pending += len(tasks)
        for task in tasks:
            self._put(_Item(_PRIORITY.get(task.priority, 1), 0.0, next(self._order), task))

    def _put(self, item: _Item) -> None:
        self._queue.put(item)

    def _work(self) -> None:
        while not self._closed.is_set():
            try:
                item = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            wait = item.not_before - self.clock.monotonic()
            if wait > 0:
                # Not due yet: put it back and let due work go first.
                self._queue.put(item)
                self.clock.sleep(min(wait, 0.05))
                continue
            self._deliver(item)

    def _deliver(self, item: _Item) -> None:
        assert self._handler is not None
        item.deliveries += 1
        try:
            acked = self._handler(item.task)
        except Exception:
            with log_context(job_id=item.task.job_id, sketch=item.task.index):
                log.exception("task handler failed")
            acked = False
        if not acked and item.deliveries < self.max_deliveries:
            item.not_before = self.clock.monotonic() + self.redelivery_s(item.deliveries)
            self._put(item)
            return
        if not acked:
            with log_context(job_id=item.task.job_id, sketch=item.task.index):
                log.error("dead-lettered after %d deliveries", item.deliveries)
            self.dead_letters.append(item.task)
        with self._idle:
            self._pending -= 1
            self._idle.notify_all()

    def redelivery_s(self, deliveries: int) -> float:
        """The wait before a task refused ``deliveries`` times is delivered again."""
        return float(min(self.max_backoff_s, self.backoff_s * 2.0 ** (deliveries - 1)))

    def join(self, timeout: float | None = None) -> bool:
        """Wait until every published task is acked or dead-lettered."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout=timeout)

    def close(self) -> None:
        self._closed.set()
