"""Deliver a pull subscription to an HTTP endpoint the way Pub/Sub push does.

The Pub/Sub emulator's own push delivers at most two messages at a time (measured on this
2-core machine: 8 messages to an endpoint that takes 2 s → peak concurrency 2, whatever the
JVM is told), while Cloud Pub/Sub pushes a job's messages all at once. The bridge keeps the
push contract — the same JSON envelope, 2xx acks, anything else nacks for redelivery under
the subscription's retry and dead-letter policy — with real concurrency.

With ``backoff`` the bridge plays the subscription's retry policy: a refused message's ack
deadline is set to the backoff its delivery attempt earns and the message is let go, so the
emulator delivers it again then, as Cloud Pub/Sub does. Without it, refusals (a model slot not
found in time) would come straight back: a nack storm the cloud does not have. The emulator's
own subscription has no retry policy (without one, a nack comes back at once and a deadline
is kept to the second); given one, it brought a first nack back at once and, after a deadline
the bridge set, delivered a message twice more and then never (docs/decisions/0075).

With ``cloudevent=True`` it delivers as Eventarc does to a Pub/Sub-triggered function: an
HTTP CloudEvent in binary mode (``ce-*`` headers) whose data is the same envelope.
"""

from __future__ import annotations

import base64
import itertools
import json
import math
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sketchgen.logs import get_logger

__all__ = ["PushBridge"]

log = get_logger(__name__)


class PushBridge:
    def __init__(
        self,
        subscription: str,
        endpoints: str | Sequence[str],
        *,
        concurrency: int = 64,
        cloudevent: bool = False,
        backoff: Callable[[int], float] | None = None,
    ) -> None:
        self.subscription = subscription
        self.backoff = backoff  # delivery attempt -> seconds before the next, after a refusal
        self.cloudevent = cloudevent
        self.endpoints = [endpoints] if isinstance(endpoints, str) else list(endpoints)
        self.concurrency = concurrency
        self._next = itertools.cycle(self.endpoints)  # several instances: round robin
        self._lock = threading.Lock()
        self._future: Any = None
        self._stopped = threading.Event()

    def _push(self, message: Any) -> None:
        envelope = {
            "message": {
                "data": base64.b64encode(message.data).decode(),
                "attributes": dict(message.attributes),
                "messageId": message.message_id,
                "deliveryAttempt": message.delivery_attempt,
            },
            "subscription": self.subscription,
        }
        with self._lock:
            endpoint = next(self._next)
        headers = {"Content-Type": "application/json"}
        if self.cloudevent:
            topic = self.subscription.replace("/subscriptions/", "/topics/")
            headers.update(
                {
                    "ce-specversion": "1.0",
                    "ce-id": message.message_id,
                    "ce-source": f"//pubsub.googleapis.com/{topic}",
                    "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
                }
            )
        request = urllib.request.Request(  # noqa: S310 - the endpoint is ours, on loopback
            endpoint, data=json.dumps(envelope).encode(), method="POST", headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=900) as response:  # noqa: S310
                acked = 200 <= response.status < 300
        except urllib.error.HTTPError:
            acked = False  # a status the function chose ("later"): it logs its own reasons
        except Exception as error:  # any other failure is a refusal too, as for Pub/Sub's push
            # Refused, reset, or an answer that is not HTTP (an endpoint that died mid-reply).
            # Let out of this callback, it would make the client nack the message, which the
            # emulator delivers again at once, past the retry policy.
            log.warning(
                "push failed",
                extra={
                    "endpoint": endpoint,
                    "message_id": message.message_id,
                    "error": repr(error),
                },
            )
            acked = False
        if acked:
            message.ack()
        elif not self._stopped.is_set():
            self._refuse(message)

    def _refuse(self, message: Any) -> None:
        delay = self.backoff(message.delivery_attempt or 1) if self.backoff is not None else 0.0
        if delay <= 0:
            message.nack()
            return
        # Out of the client's lease management (which would keep extending the deadline), then
        # due again after the backoff: the emulator redelivers it when that deadline passes.
        message.drop()
        message.modify_ack_deadline(min(600, max(1, math.ceil(delay))))

    def start(self) -> PushBridge:
        # The ignore below: google.cloud is a namespace package mypy cannot resolve
        from google.cloud import pubsub_v1  # type: ignore[attr-defined]
        from google.cloud.pubsub_v1.subscriber.scheduler import ThreadScheduler

        subscriber = pubsub_v1.SubscriberClient()
        scheduler = ThreadScheduler(ThreadPoolExecutor(self.concurrency, "push-bridge"))
        self._future = subscriber.subscribe(
            self.subscription,
            callback=self._push,
            scheduler=scheduler,
            flow_control=pubsub_v1.types.FlowControl(max_messages=self.concurrency),
        )
        return self

    def stop(self) -> None:
        self._stopped.set()
        if self._future is not None:
            self._future.cancel()
            self._future = None
