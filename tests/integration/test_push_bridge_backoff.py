"""The push bridge plays the subscription's retry policy on the Pub/Sub emulator (ADR 0055),
and any failed push is a refusal, as for Pub/Sub's own push.

The emulator delivers a nacked message again at once, whatever the subscription's retry
policy; the cloud waits the policy's backoff. A worker that answers "later" to every delivery
(no model slot in time) must therefore see each message come back after the backoff its
attempt earns, not straight away — and come back every time: a fourth delivery is asked for
because a message left to an ack deadline the bridge set came back twice, then never. The
bounds below are lower bounds the bridge sets (the emulator may only be later), not a measure
of speed.
"""

from __future__ import annotations

import base64
import json
import socket
import socketserver
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from dev.push_bridge import PushBridge
from tests.integration.conftest import PROJECT

MESSAGES, DELIVERIES = 4, 4
MINIMUM_BACKOFF_S = 1.0


def _backoff(attempt: int) -> float:
    return MINIMUM_BACKOFF_S * 2 ** (attempt - 1)  # 1 s, 2 s, 4 s ...


class _Refusing:
    """An endpoint that answers 429 ("later") to every push and notes when each arrived."""

    def __init__(self) -> None:
        self.arrivals: dict[str, list[tuple[float, int]]] = defaultdict(list)
        self.changed = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                at = time.monotonic()
                envelope = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                message = envelope["message"]
                body = base64.b64decode(message["data"]).decode()
                with outer.changed:
                    outer.arrivals[body].append((at, int(message["deliveryAttempt"] or 0)))
                    outer.changed.notify_all()
                self.send_response(429)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def wait_for(self, messages: int, deliveries: int, timeout_s: float) -> bool:
        def enough() -> bool:
            seen = list(self.arrivals.values())
            return len(seen) >= messages and all(len(a) >= deliveries for a in seen)

        with self.changed:
            return self.changed.wait_for(enough, timeout=timeout_s)


@pytest.fixture
def refusing() -> Iterator[_Refusing]:
    endpoint = _Refusing()
    yield endpoint
    endpoint.server.shutdown()
    endpoint.server.server_close()


def _subscription(run: str, name: str) -> tuple[Any, str, str]:
    """A publisher, a topic and its subscription (with a dead-letter policy, so that the
    emulator counts each message's delivery attempts)."""
    # The ignore below: google.cloud is a namespace package mypy cannot resolve
    from google.cloud import pubsub_v1  # type: ignore[attr-defined]

    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    topic = publisher.create_topic(name=f"projects/{PROJECT}/topics/{name}-{run}").name
    dead = publisher.create_topic(name=f"projects/{PROJECT}/topics/{name}-dead-{run}").name
    subscription = f"projects/{PROJECT}/subscriptions/{name}-{run}"
    subscriber.create_subscription(
        request={
            "name": subscription,
            "topic": topic,
            "ack_deadline_seconds": 60,
            "dead_letter_policy": {"dead_letter_topic": dead, "max_delivery_attempts": 10},
        }
    )
    return publisher, topic, subscription


def test_refused_pushes_come_back_after_the_backoff_not_at_once(
    pubsub_emulator: str, refusing: _Refusing
) -> None:
    publisher, topic, subscription = _subscription(uuid.uuid4().hex[:8], "refused")
    bridge = PushBridge(subscription, refusing.url, concurrency=8, backoff=_backoff).start()
    try:
        for n in range(MESSAGES):
            publisher.publish(topic, f"sketch-{n}".encode()).result(timeout=30)
        assert refusing.wait_for(MESSAGES, DELIVERIES, timeout_s=90), dict(refusing.arrivals)
    finally:
        bridge.stop()
    for body, arrivals in refusing.arrivals.items():
        times = [at for at, _ in arrivals[:DELIVERIES]]
        attempts = [attempt for _, attempt in arrivals[:DELIVERIES]]
        assert attempts == list(range(1, DELIVERIES + 1)), (body, attempts)
        # After the n-th refusal, at least the n-th backoff (1 s, 2 s, then 4 s); a plain nack
        # comes back within milliseconds.
        for n in range(1, DELIVERIES):
            assert times[n] - times[n - 1] >= _backoff(n) - 0.05, (body, times)


class _GarbledOnce(socketserver.ThreadingTCPServer):
    """An endpoint that answers each message's first push with bytes that are not HTTP (an
    instance dying mid-reply) and acknowledges the next one."""

    daemon_threads = True

    def __init__(self) -> None:
        self.pushes: dict[str, list[float]] = defaultdict(list)
        self.changed = threading.Condition()
        super().__init__(("127.0.0.1", 0), self._Handler)

    class _Handler(socketserver.StreamRequestHandler):
        server: _GarbledOnce

        def handle(self) -> None:
            length = 0
            while (line := self.rfile.readline().strip()) != b"":
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            envelope = json.loads(self.rfile.read(length))
            body = base64.b64decode(envelope["message"]["data"]).decode()
            with self.server.changed:
                self.server.pushes[body].append(time.monotonic())
                first = len(self.server.pushes[body]) == 1
                self.server.changed.notify_all()
            if first:
                self.wfile.write(b"\x00 not an HTTP answer\r\n\r\n")
            else:
                self.wfile.write(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
            self.connection.shutdown(socket.SHUT_WR)


def test_a_push_answered_with_something_not_http_comes_back_after_the_backoff(
    pubsub_emulator: str,
) -> None:
    endpoint = _GarbledOnce()
    threading.Thread(target=endpoint.serve_forever, daemon=True).start()
    publisher, topic, subscription = _subscription(uuid.uuid4().hex[:8], "garbled")
    bridge = PushBridge(
        subscription, f"http://127.0.0.1:{endpoint.server_address[1]}/", backoff=_backoff
    ).start()
    try:
        for n in range(MESSAGES):
            publisher.publish(topic, f"sketch-{n}".encode()).result(timeout=30)
        with endpoint.changed:
            delivered_again = endpoint.changed.wait_for(
                lambda: (
                    len(endpoint.pushes) == MESSAGES
                    and all(len(times) >= 2 for times in endpoint.pushes.values())
                ),
                timeout=60,
            )
        assert delivered_again, dict(endpoint.pushes)
        # A refusal like any other: after the backoff. Before, the error escaped the bridge's
        # callback, the client nacked the message and the emulator pushed it again at once.
        for body, times in endpoint.pushes.items():
            assert times[1] - times[0] >= _backoff(1) - 0.05, (body, times)
    finally:
        bridge.stop()
        endpoint.shutdown()
        endpoint.server_close()
