"""Cloud adapters against the real emulators and moto's S3 server."""

from __future__ import annotations

import json
import urllib.request
import uuid

import pytest

from sketchgen.adapters.blob_url import blob_store_from_url
from sketchgen.adapters.gcp.firestore_job_store import FirestoreJobStore
from sketchgen.adapters.gcp.gcs_blob_store import GcsBlobStore
from sketchgen.adapters.gcp.pubsub_task_queue import PubSubTaskQueue
from sketchgen.adapters.local.blob_store import LocalBlobStore
from sketchgen.adapters.s3_blob_store import S3BlobStore
from sketchgen.errors import InputError, NotFoundError
from sketchgen.ports import BlobStore, JobStore, SketchTask
from tests.contract.job_store_contract import JobStoreContract
from tests.integration.conftest import PROJECT


class TestFirestoreJobStore(JobStoreContract):
    @pytest.fixture
    def store(self, firestore_emulator: str) -> JobStore:
        # A collection per test keeps tests apart on the shared emulator.
        return FirestoreJobStore(project=PROJECT, collection=f"jobs-{uuid.uuid4().hex[:8]}")


def test_firestore_document_shape_for_mobile_clients(firestore_emulator: str) -> None:
    from tests.contract.job_store_contract import make_job

    store = FirestoreJobStore(project=PROJECT)
    job = make_job()
    store.create_job(job)
    raw = store.client.collection("jobs").document(job.job_id).get().to_dict()
    assert raw["owner_uid"] == "alice" and raw["style_id"] == "ink"
    assert raw["status"] == "queued" and set(raw["sketches"]) == {"0", "1", "2"}
    assert hasattr(raw["expire_at"], "timestamp")  # a Firestore timestamp, for the TTL policy


def test_pubsub_queue_publishes_one_message_per_task(pubsub_emulator: str) -> None:
    from google.cloud import pubsub_v1

    topic = f"projects/{PROJECT}/topics/sketches-{uuid.uuid4().hex[:8]}"
    subscription = topic.replace("/topics/", "/subscriptions/")
    pubsub_v1.PublisherClient().create_topic(name=topic)
    subscriber = pubsub_v1.SubscriberClient()
    subscriber.create_subscription(name=subscription, topic=topic)
    PubSubTaskQueue(topic).publish([SketchTask("20250101_000000-abcdef", i) for i in range(3)])
    received = subscriber.pull(subscription=subscription, max_messages=10, timeout=10)
    payloads = sorted(json.loads(m.message.data)["index"] for m in received.received_messages)
    assert payloads == [0, 1, 2]
    attributes = received.received_messages[0].message.attributes
    assert (
        attributes["job_id"] == "20250101_000000-abcdef" and attributes["priority"] == "interactive"
    )


def _exercise(store: BlobStore) -> None:
    key = f"jobs/20250101_000000-{uuid.uuid4().hex[:6]}/sketch_0.png"
    store.put(key, b"\x89PNG fake", "image/png")
    assert store.exists(key) and store.get(key) == b"\x89PNG fake"
    assert not store.exists(key + "x")
    with pytest.raises(NotFoundError):
        store.get(key.replace("sketch_0", "sketch_9"))
    for bad in ("../etc/passwd", "jobs/../../x", "/abs", "a\\b", "jobs/\x00", "", "jobs//x"):
        with pytest.raises(InputError):
            store.put(bad, b"x", "image/png")
    url = store.signed_url(key, expires_s=60)
    if url is not None:
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.read() == b"\x89PNG fake"
    # Deletion: one key (a missing one is no error), and a folder with everything under it.
    folder = key.rsplit("/", 1)[0]
    store.put(f"{folder}/metadata.json", b"{}", "application/json")
    store.put(f"{folder}x/sketch_0.png", b"other", "image/png")  # a sibling, not under it
    store.delete(f"{folder}/metadata.json")
    store.delete(f"{folder}/metadata.json")
    assert not store.exists(f"{folder}/metadata.json") and store.exists(key)
    store.put(f"{folder}/deeper/input.png", b"x", "image/png")
    assert store.delete_under(folder) == 2
    assert not store.exists(key) and not store.exists(f"{folder}/deeper/input.png")
    assert store.exists(f"{folder}x/sketch_0.png") and store.delete_under(folder) == 0


def test_gcs_blob_store(gcs_emulator: str) -> None:
    from google.cloud import storage

    bucket = f"bucket-{uuid.uuid4().hex[:8]}"
    storage.Client(project=PROJECT).create_bucket(bucket)
    _exercise(GcsBlobStore(bucket, prefix="outputs"))
    assert isinstance(blob_store_from_url(f"gs://{bucket}/p"), GcsBlobStore)


def test_s3_blob_store_on_moto(moto_server: str) -> None:
    import boto3

    bucket = f"bucket-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=moto_server).create_bucket(Bucket=bucket)
    _exercise(S3BlobStore(bucket, prefix="outputs", endpoint_url=moto_server))
    store = blob_store_from_url(f"s3://{bucket}/outputs", s3_endpoint_url=moto_server)
    assert isinstance(store, S3BlobStore) and store.prefix == "outputs"


def test_local_blob_store_and_urls(tmp_path) -> None:
    _exercise(LocalBlobStore(tmp_path))
    assert isinstance(blob_store_from_url(f"file://{tmp_path}"), LocalBlobStore)
    with pytest.raises(InputError):
        blob_store_from_url("ftp://x")
