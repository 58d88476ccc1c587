"""``PubSubTaskQueue``: one message per sketch on the sketch topic."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from typing import Any

from sketchgen import telemetry
from sketchgen.errors import StorageError
from sketchgen.ports import SketchTask

__all__ = ["PubSubTaskQueue"]


class PubSubTaskQueue:
    def __init__(
        self, topic_path: str, publisher: Any | None = None, timeout_s: float = 30
    ) -> None:
        self.topic_path = topic_path
        self.timeout_s = timeout_s
        self._publisher = publisher
        self._lock = threading.Lock()

    @property
    def connected(self) -> bool:
        """Whether the publisher client has been made (at instance start, or the first
        publish)."""
        return self._publisher is not None

    @property
    def publisher(self) -> Any:
        if self._publisher is None:
            with self._lock:
                if self._publisher is None:
                    # The ignore below: google.cloud is a namespace package mypy cannot resolve
                    from google.cloud import pubsub_v1  # type: ignore[attr-defined]

                    self._publisher = pubsub_v1.PublisherClient()
        return self._publisher

    def connect(self, timeout_s: float = 10.0) -> None:
        """Make the publisher and open its connection (at instance start, not on the first
        job). Publishing is the only call it may make (roles/pubsub.publisher), so the channel
        is opened without one."""
        import grpc

        grpc.channel_ready_future(self.publisher._transport.grpc_channel).result(timeout_s)

    def publish(self, tasks: Sequence[SketchTask]) -> None:
        from google.api_core import exceptions

        try:
            futures = [self._publish_one(t) for t in tasks]
            for future in futures:  # all sent at once, then waited for together
                future.result(timeout=self.timeout_s)
        except (exceptions.GoogleAPICallError, TimeoutError) as error:
            raise StorageError(f"pubsub: could not publish: {error}") from error

    def _publish_one(self, task: SketchTask) -> Any:
        # One PRODUCER span per message, its W3C context in the message's attributes: the
        # delivery that draws the sketch continues the job's trace (sketchgen.api.push).
        with telemetry.span(
            "pubsub.publish",
            kind=telemetry.SpanKind.PRODUCER,
            job_id=task.job_id,
            sketch=task.index,
        ):
            return self.publisher.publish(
                self.topic_path,
                json.dumps(
                    {"job_id": task.job_id, "index": task.index, "priority": task.priority}
                ).encode(),
                job_id=task.job_id,
                index=str(task.index),
                priority=task.priority,
                **telemetry.inject({}),
            )
