"""firestore.rules against the real emulator: a job is readable by its owner only, and no
client writes anything. Seed data is written as admin (rules bypassed), like the functions do."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.rules.conftest import Emulator

ALICE, BOB = "alice-uid", "bob-uid"
UserClient = Callable[[str | None], httpx.Client]


def job_fields(owner_uid: str, status: str = "queued") -> dict[str, Any]:
    return {
        "fields": {
            "owner_uid": {"stringValue": owner_uid},
            "status": {"stringValue": status},
            "created_at": {"timestampValue": "2025-01-01T00:00:00Z"},
            "updated_at": {"timestampValue": "2025-01-01T00:00:00Z"},
            "expire_at": {"timestampValue": "2025-02-01T00:00:00Z"},
        }
    }


@pytest.fixture
def job_id(admin: httpx.Client) -> str:
    """Alice's job, written as admin."""
    job_id = f"20250101_000000-{uuid.uuid4().hex[:6]}"
    response = admin.patch(f"/jobs/{job_id}", json=job_fields(ALICE))
    assert response.status_code == 200, response.text
    return job_id


def run_query(client: httpx.Client, emulator: Emulator, owner_uid: str | None) -> httpx.Response:
    query: dict[str, Any] = {"from": [{"collectionId": "jobs"}]}
    if owner_uid is not None:
        query["where"] = {
            "fieldFilter": {
                "field": {"fieldPath": "owner_uid"},
                "op": "EQUAL",
                "value": {"stringValue": owner_uid},
            }
        }
    return client.post(f"{emulator.documents}:runQuery", json={"structuredQuery": query})


# -- reads ----------------------------------------------------------------------------------


def test_owner_reads_their_job(as_user: UserClient, job_id: str) -> None:
    response = as_user(ALICE).get(f"/jobs/{job_id}")
    assert response.status_code == 200, response.text
    assert response.json()["fields"]["owner_uid"]["stringValue"] == ALICE


def test_another_signed_in_user_cannot_read_the_job(as_user: UserClient, job_id: str) -> None:
    response = as_user(BOB).get(f"/jobs/{job_id}")
    assert response.status_code == 403, response.text


def test_anonymous_request_cannot_read_the_job(as_user: UserClient, job_id: str) -> None:
    response = as_user(None).get(f"/jobs/{job_id}")
    assert response.status_code == 403, response.text


def test_owner_lists_only_with_a_filter_on_themselves(
    as_user: UserClient, firestore_emulator: Emulator, job_id: str
) -> None:
    own = run_query(as_user(ALICE), firestore_emulator, ALICE)
    assert own.status_code == 200, own.text
    names = [row["document"]["name"] for row in own.json() if "document" in row]
    assert any(name.endswith(f"/jobs/{job_id}") for name in names)

    # Rules are not filters: a query that could return others' jobs is refused whole.
    assert run_query(as_user(ALICE), firestore_emulator, None).status_code == 403
    assert run_query(as_user(BOB), firestore_emulator, ALICE).status_code == 403
    assert run_query(as_user(None), firestore_emulator, ALICE).status_code == 403


def test_nothing_outside_jobs_is_readable(as_user: UserClient, admin: httpx.Client) -> None:
    doc = f"/elsewhere/{uuid.uuid4().hex}"
    assert admin.patch(doc, json={"fields": {"owner_uid": {"stringValue": ALICE}}}).is_success
    assert as_user(ALICE).get(doc).status_code == 403
    assert as_user(None).get(doc).status_code == 403


# -- writes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("uid", [ALICE, BOB, None], ids=["owner", "other-user", "anonymous"])
def test_no_client_creates_a_job(as_user: UserClient, admin: httpx.Client, uid: str | None) -> None:
    new_id = f"20250101_000000-{uuid.uuid4().hex[:6]}"
    response = as_user(uid).post("/jobs", params={"documentId": new_id}, json=job_fields(ALICE))
    assert response.status_code == 403, response.text
    assert admin.get(f"/jobs/{new_id}").status_code == 404


@pytest.mark.parametrize("uid", [ALICE, BOB, None], ids=["owner", "other-user", "anonymous"])
def test_no_client_updates_a_job(
    as_user: UserClient, admin: httpx.Client, job_id: str, uid: str | None
) -> None:
    response = as_user(uid).patch(
        f"/jobs/{job_id}",
        params={"updateMask.fieldPaths": "status"},
        json={"fields": {"status": {"stringValue": "ok"}}},
    )
    assert response.status_code == 403, response.text
    stored = admin.get(f"/jobs/{job_id}").json()
    assert stored["fields"]["status"]["stringValue"] == "queued"


@pytest.mark.parametrize("uid", [ALICE, BOB, None], ids=["owner", "other-user", "anonymous"])
def test_no_client_deletes_a_job(
    as_user: UserClient, admin: httpx.Client, job_id: str, uid: str | None
) -> None:
    assert as_user(uid).delete(f"/jobs/{job_id}").status_code == 403
    assert admin.get(f"/jobs/{job_id}").status_code == 200


def test_no_client_writes_outside_jobs(as_user: UserClient) -> None:
    response = as_user(ALICE).patch(
        f"/users/{ALICE}", json={"fields": {"name": {"stringValue": "x"}}}
    )
    assert response.status_code == 403, response.text


def test_admin_bypasses_the_rules(admin: httpx.Client, job_id: str) -> None:
    """The functions' server SDK is not subject to the rules: it creates and updates jobs."""
    response = admin.patch(
        f"/jobs/{job_id}",
        params={"updateMask.fieldPaths": "status"},
        json={"fields": {"status": {"stringValue": "running"}}},
    )
    assert response.status_code == 200, response.text


# -- accounts and usage (docs/decisions/0012) -------------------------------------------------


@pytest.mark.parametrize("collection", ["accounts", "usage"])
def test_a_user_reads_only_their_own_account_and_usage(
    as_user: UserClient, admin: httpx.Client, firestore_emulator: Emulator, collection: str
) -> None:
    doc = f"/{collection}/{ALICE}"
    assert admin.patch(doc, json={"fields": {"plan": {"stringValue": "free"}}}).is_success
    mine = as_user(ALICE).get(doc)
    assert mine.status_code == 200, mine.text
    assert mine.json()["fields"]["plan"]["stringValue"] == "free"
    assert as_user(BOB).get(doc).status_code == 403
    assert as_user(None).get(doc).status_code == 403
    listing = as_user(ALICE).post(
        f"{firestore_emulator.documents}:runQuery",
        json={"structuredQuery": {"from": [{"collectionId": collection}]}},
    )
    assert listing.status_code == 403


def test_a_user_reads_and_lists_only_their_own_usage_shards(
    as_user: UserClient, admin: httpx.Client, firestore_emulator: Emulator
) -> None:
    """The usage is usage/{uid} and its shards (docs/decisions/0051): the owner reads them
    all, nobody else reads any, and no client writes one."""
    shard = f"/usage/{ALICE}/shards/1"
    assert admin.patch(shard, json={"fields": {"images_used": {"integerValue": "6"}}}).is_success
    assert as_user(ALICE).get(shard).status_code == 200
    assert as_user(ALICE).get(f"/usage/{ALICE}/shards").status_code == 200  # a listing
    for other in (BOB, None):
        assert as_user(other).get(shard).status_code == 403
        assert as_user(other).get(f"/usage/{ALICE}/shards").status_code == 403
    written = {"fields": {"images_used": {"integerValue": "0"}}}
    assert as_user(ALICE).patch(shard, json=written).status_code == 403
    assert as_user(ALICE).delete(shard).status_code == 403
    assert admin.get(shard).json()["fields"]["images_used"]["integerValue"] == "6"


@pytest.mark.parametrize("collection", ["accounts", "usage"])
@pytest.mark.parametrize("uid", [ALICE, BOB, None])
def test_no_client_writes_an_account_or_usage(
    as_user: UserClient, admin: httpx.Client, collection: str, uid: str | None
) -> None:
    doc = f"/{collection}/{ALICE}"
    assert admin.patch(doc, json={"fields": {"plan": {"stringValue": "free"}}}).is_success
    upgrade = {"fields": {"plan": {"stringValue": "pro"}}}
    assert as_user(uid).patch(doc, json=upgrade).status_code == 403
    assert as_user(uid).delete(doc).status_code == 403
    created = as_user(uid).post(f"/{collection}", params={"documentId": BOB}, json=upgrade)
    assert created.status_code == 403
    assert admin.get(doc).json()["fields"]["plan"]["stringValue"] == "free"


# -- a job's sketch documents (jobs/{id}/sketches/{i}) ---------------------------------------


def test_only_the_jobs_owner_reads_its_sketches(
    as_user: UserClient, admin: httpx.Client, firestore_emulator: Emulator, job_id: str
) -> None:
    sketch = f"/jobs/{job_id}/sketches/0"
    running = {"fields": {"status": {"stringValue": "running"}}}
    assert admin.patch(sketch, json=running).is_success
    own = as_user(ALICE).get(sketch)
    assert own.status_code == 200 and own.json()["fields"]["status"]["stringValue"] == "running"
    listed = as_user(ALICE).get(f"/jobs/{job_id}/sketches")  # what a listener on them reads
    assert listed.status_code == 200, listed.text
    assert [d["name"].rsplit("/", 1)[-1] for d in listed.json()["documents"]] == ["0"]
    for uid in (BOB, None):
        assert as_user(uid).get(sketch).status_code == 403
        assert as_user(uid).get(f"/jobs/{job_id}/sketches").status_code == 403


@pytest.mark.parametrize("uid", [ALICE, BOB, None])
def test_no_client_writes_a_sketch(as_user: UserClient, job_id: str, uid: str | None) -> None:
    sketch = f"/jobs/{job_id}/sketches/0"
    done = {"fields": {"status": {"stringValue": "ok"}}}
    assert as_user(uid).patch(sketch, json=done).status_code == 403
    assert as_user(uid).delete(sketch).status_code == 403
    assert as_user(uid).patch(f"/jobs/{job_id}/markers/final", json=done).status_code == 403
