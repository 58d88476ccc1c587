"""The Firestore client over a pool of connections, on the emulator: listeners spread over the
channels (fewest open first) and hand their channel back when they close; reads and writes go
through the same pool; the stream function's job listeners open one per job on it."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from sketchgen.adapters.gcp import _firestore
from sketchgen.adapters.gcp._channel_pool import ChannelPool
from sketchgen.adapters.gcp.firestore_job_store import FirestoreJobStore
from sketchgen.api.feed import JobFeed
from sketchgen.jobs import JobRecord
from tests.contract.job_store_contract import make_job
from tests.helpers.waiting import wait_until
from tests.integration.conftest import PROJECT


@pytest.fixture
def pooled(firestore_emulator: str) -> Iterator[Any]:
    _firestore.use_channels(3)
    _firestore.forget_clients()
    try:
        yield _firestore.client_for(PROJECT, "(default)")
    finally:
        _firestore.use_channels(1)
        _firestore.forget_clients()


def _pool(client: Any) -> ChannelPool:
    channel = client._firestore_api._transport.grpc_channel
    assert isinstance(channel, ChannelPool)
    return channel


def _streams_opened(pool: ChannelPool, count: int) -> None:
    """Until ``count`` listener streams are open on the pool, and no more. A listener opens its
    stream on its own thread, after ``on_snapshot`` has returned (google-api-core's background
    consumer says it is ready before it opens the call): one of 8 was not open yet when a
    loaded run looked at once."""
    wait_until(
        lambda: sum(pool.open_streams) >= count,
        f"{count} listener streams never opened",
        timeout_s=30,
    )
    assert sum(pool.open_streams) == count, pool.open_streams


def test_reads_and_writes_go_through_the_pool(pooled: Any) -> None:
    pool = _pool(pooled)
    assert len(pool.channels) == 3
    _firestore.connect(pooled, timeout_s=30)  # every channel connects, then one read
    collection = pooled.collection(f"pool-{uuid.uuid4().hex[:8]}")
    for n in range(6):  # unary calls take the channels in turn
        collection.document(str(n)).set({"n": n})
    assert sorted(d.to_dict()["n"] for d in collection.stream()) == list(range(6))


def test_listeners_spread_over_the_channels_and_give_them_back(pooled: Any) -> None:
    pool = _pool(pooled)
    collection = pooled.collection(f"pool-{uuid.uuid4().hex[:8]}")
    seen: dict[str, threading.Event] = {}
    watches = []
    for n in range(5):
        ref = collection.document(f"doc-{n}")
        ref.set({"v": 0})
        event = seen[ref.id] = threading.Event()

        def on_snapshot(docs: list[Any], changes: Any, read_time: Any, e=event) -> None:
            if any(d.exists and d.to_dict()["v"] == 1 for d in docs):
                e.set()

        watches.append(ref.on_snapshot(on_snapshot))
    try:
        # Five listeners on three channels: 2, 2 and 1 open streams (fewest open first).
        _streams_opened(pool, 5)
        assert sorted(pool.open_streams) == [1, 2, 2]
        for n in range(5):
            collection.document(f"doc-{n}").update({"v": 1})
        for doc_id, event in seen.items():
            assert event.wait(30), f"the listener on {doc_id} saw no update"
    finally:
        for watch in watches:
            watch.unsubscribe()
    deadline = threading.Event()
    for _ in range(100):  # a closed stream hands its channel back when gRPC ends the call
        if pool.open_streams == [0, 0, 0]:
            break
        deadline.wait(0.1)
    assert pool.open_streams == [0, 0, 0]


def test_the_feed_opens_one_listener_per_job_on_the_pool(pooled: Any) -> None:
    store = FirestoreJobStore(project=PROJECT, collection=f"jobs-{uuid.uuid4().hex[:8]}")
    feed = JobFeed(store)
    pool = _pool(pooled)
    ids = []
    for _ in range(4):
        job = make_job(n=1)
        store.create_job(job)
        ids.append(job.job_id)
    with (
        feed.subscribe(ids[0]) as a,
        feed.subscribe(ids[0]) as b,  # the same job: its one listener
        feed.subscribe(ids[1]) as c,
        feed.subscribe(ids[2]) as d,
        feed.subscribe(ids[3]),
    ):
        assert feed.watching() == 4
        # A job is watched as two listeners (its document and its sketches' documents), spread
        # over the pool's three connections by open streams.
        _streams_opened(pool, 2 * 4)
        assert sorted(pool.open_streams) == [2, 3, 3]
        for subscription in (a, b, c, d):
            first = subscription.next(30)
            assert isinstance(first, JobRecord) and first.status == "queued"
