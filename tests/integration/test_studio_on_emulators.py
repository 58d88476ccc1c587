"""The studio's store methods (issue 27) on the real emulators: paging and deleting jobs and
favourites in Firestore, and deleting a job's folder from Cloud Storage and S3."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from sketchgen.adapters.gcp.firestore_favourite_store import FirestoreFavouriteStore
from sketchgen.adapters.gcp.firestore_job_store import FirestoreJobStore
from sketchgen.adapters.gcp.gcs_blob_store import GcsBlobStore
from sketchgen.adapters.local.blob_store import LocalBlobStore
from sketchgen.adapters.s3_blob_store import S3BlobStore
from sketchgen.ports import BlobStore, FavouriteStore, JobStore
from tests.contract.job_store_contract import make_job
from tests.contract.studio_contract import FavouriteStoreContract, JobPagesContract
from tests.integration.conftest import PROJECT


class TestFirestoreJobPages(JobPagesContract):
    @pytest.fixture
    def store(self, firestore_emulator: str) -> JobStore:
        return FirestoreJobStore(project=PROJECT, collection=f"jobs-{uuid.uuid4().hex[:8]}")


class TestFirestoreFavourites(FavouriteStoreContract):
    @pytest.fixture
    def favourites(self, firestore_emulator: str) -> FavouriteStore:
        # A database per test keeps the contract's users apart on the shared emulator.
        return FirestoreFavouriteStore(project=PROJECT, database=f"fav-{uuid.uuid4().hex[:8]}")


def test_firestore_delete_job_takes_the_documents_under_it(firestore_emulator: str) -> None:
    store = FirestoreJobStore(project=PROJECT, collection=f"jobs-{uuid.uuid4().hex[:8]}")
    job = make_job()
    store.create_job(job)
    ref = store.client.collection(store.collection).document(job.job_id)
    ref.collection("sketches").document("0").set({"status": "ok"})
    assert store.delete_job(job.job_id) is True
    assert not ref.get().exists
    assert not list(ref.collection("sketches").stream())


def _exercise_delete_under(store: BlobStore) -> None:
    job = f"jobs/20261201_000000-{uuid.uuid4().hex[:6]}"
    other = f"jobs/20261201_000000-{uuid.uuid4().hex[:6]}"
    keys = [f"{job}/sketch_0.png", f"{job}/exports/sketch_0.svg", f"{job}/thumbnails/sketch_0.png"]
    for key in (*keys, f"{other}/sketch_0.png", f"{job}x/sketch_0.png"):
        store.put(key, b"data", "image/png")
    assert store.delete_under(job) == 3
    assert not any(store.exists(key) for key in keys)
    # Only that folder: not a sibling whose name starts the same.
    assert store.exists(f"{other}/sketch_0.png") and store.exists(f"{job}x/sketch_0.png")
    assert store.delete_under(job) == 0


def test_gcs_delete_under(gcs_emulator: str) -> None:
    from google.cloud import storage

    bucket = f"bucket-{uuid.uuid4().hex[:8]}"
    storage.Client(project=PROJECT).create_bucket(bucket)
    _exercise_delete_under(GcsBlobStore(bucket, prefix="outputs"))


def test_s3_delete_under(moto_server: str) -> None:
    import boto3

    bucket = f"bucket-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=moto_server).create_bucket(Bucket=bucket)
    _exercise_delete_under(S3BlobStore(bucket, prefix="outputs", endpoint_url=moto_server))


def test_local_delete_under(tmp_path: Path) -> None:
    _exercise_delete_under(LocalBlobStore(tmp_path))
