"""A user's data on real parts (issue 23, item 8): caps that hold under concurrent writers in
Firestore transactions, and ``DELETE /v1/me`` over Firestore and the Cloud Storage emulator —
nothing of the user is left, another user's data is untouched."""

from __future__ import annotations

import io
import threading
import uuid
from collections.abc import Callable

import pytest
from PIL import Image
from werkzeug.test import Client

from sketchgen.adapters.gcp.firestore_style_store import FirestoreStyleStore
from sketchgen.api.http import Api
from sketchgen.bootstrap import build_api, build_service
from sketchgen.errors import LimitError
from sketchgen.layout import sketch_key, style_reference_key
from sketchgen.services import SketchService
from sketchgen.settings import Settings
from sketchgen.styles.owned import ReferenceDoc, StyleDoc
from tests.helpers.responses import json_of

ALICE = {"Authorization": "Bearer dev:alice"}
BOB = {"Authorization": "Bearer dev:bob"}


def _race(count: int, work: Callable[[int], None]) -> list[BaseException | None]:
    outcomes: list[BaseException | None] = [None] * count
    start = threading.Barrier(count)

    def run(i: int) -> None:
        start.wait()
        try:
            work(i)
        except BaseException as error:  # the outcome is the test's to judge
            outcomes[i] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_firestore_caps_hold_under_concurrent_writers(firestore_emulator: str) -> None:
    from google.cloud import firestore

    project = f"caps-{uuid.uuid4().hex[:8]}"

    def store() -> FirestoreStyleStore:  # an instance each, as separate function instances
        return FirestoreStyleStore(firestore.Client(project=project))

    outcomes = _race(
        5,
        lambda i: store().create_style(
            StyleDoc(style_id=f"us_{i}", owner_uid="alice", name=f"s{i}"), limit=3
        ),
    )
    assert sum(o is None for o in outcomes) == 3, outcomes
    assert all(o is None or isinstance(o, LimitError) for o in outcomes)
    assert len(store().list_styles("alice")) == 3

    style_id = store().list_styles("alice")[0].style_id
    outcomes = _race(
        6,
        lambda i: (
            store().add_reference(style_id, ReferenceDoc(sha256=f"{i:064x}"), limit=4) and None
        ),
    )
    assert sum(o is None for o in outcomes) == 4, outcomes
    assert all(o is None or isinstance(o, LimitError) for o in outcomes)
    assert len(store().list_references(style_id)) == 4
    style = store().get_style(style_id)
    assert style is not None and style.revision == 4


def _png(seed: int) -> bytes:
    image = Image.new("L", (40, 30), 255)
    for x in range(40):
        image.putpixel((x, (x * (seed + 3)) % 30), 0)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def service(firestore_emulator: str, gcs_emulator: str) -> SketchService:
    from google.cloud import storage

    project = f"erase-{uuid.uuid4().hex[:8]}"
    bucket = f"bucket-{uuid.uuid4().hex[:8]}"
    storage.Client(project=project).create_bucket(bucket)
    settings = Settings(
        job_store="firestore",
        SKETCHGEN_PROJECT=project,
        blob_url=f"gs://{bucket}",
        offline=True,
        auth="dev",
    )
    return build_service(settings)


def test_delete_me_on_the_emulators_leaves_nothing_of_the_user(service: SketchService) -> None:
    from google.cloud import firestore

    api: Api = build_api(lambda: service, Settings(auth="dev", offline=True))
    client = Client(api)
    body = {"brief": "golf mascot", "style_id": "loose-ink-mascot", "num_images": 2}
    jobs, styles, refs = {}, {}, {}
    for who, headers in (("alice", ALICE), ("bob", BOB)):
        answer = client.post("/v1/jobs", json=body, headers={**headers, "Idempotency-Key": "k"})
        assert answer.status_code == 202, answer.get_data(as_text=True)
        jobs[who] = json_of(answer)["job_id"]
        made = client.post("/v1/styles", json={"name": "Ink"}, headers=headers)
        styles[who] = json_of(made)["style_id"]
        uploaded = client.post(
            f"/v1/styles/{styles[who]}/references",
            data={"image": (io.BytesIO(_png(1)), "r.png", "image/png"), "tags": "fox"},
            headers=headers,
        )
        assert uploaded.status_code == 201, uploaded.get_data(as_text=True)
        refs[who] = json_of(uploaded)["sha256"]
    join = getattr(service.queue, "join", None)
    assert join is not None
    join()
    db = firestore.Client(project=service.catalog.store.client.project)
    # Per-sketch subdocuments, as the job documents are being reshaped into (issue 24), and
    # one level deeper: whatever lies under a job's document goes with it.
    for who in ("alice", "bob"):
        sketch = db.collection("jobs").document(jobs[who]).collection("sketches").document("0")
        sketch.set({"status": "ok"})
        sketch.collection("attempts").document("1").set({"at": 1})
    assert service.blobs.exists(sketch_key(jobs["alice"], 0))

    answer = client.delete("/v1/me", headers=ALICE)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert json_of(answer)["deleted"]["jobs"] == 1

    # Nothing of alice's in Firestore: no job, nothing under it, no key, no style, no reference.
    alice_job = db.collection("jobs").document(jobs["alice"])
    assert not alice_job.get().exists and list(alice_job.collections()) == []
    remaining_sketches = {s.reference.path for s in db.collection_group("sketches").stream()}
    # Bob's job keeps its sketches' documents (one per sketch); none of alice's is left.
    assert remaining_sketches == {f"jobs/{jobs['bob']}/sketches/{i}" for i in range(2)}
    keys = [d.to_dict()["owner_uid"] for d in db.collection("idempotency").stream()]
    assert keys == ["bob"]
    owners = {d.to_dict()["owner_uid"] for d in db.collection("styles").stream()}
    assert owners == {"bob"}
    assert [r.reference.parent.parent.id for r in db.collection_group("references").stream()] == [
        styles["bob"]
    ]
    usage = db.collection("usage").document("alice").get().to_dict() or {}
    assert usage.get("jobs") == {}  # today's counters only: no job of hers is named
    # Nothing of alice's in the bucket.
    from google.cloud import storage

    bucket = storage.Client(project=db.project).bucket(service.blobs.bucket_name)
    names = sorted(b.name for b in bucket.list_blobs())
    assert not [n for n in names if jobs["alice"] in n or styles["alice"] in n]
    # Bob's, all there.
    assert service.blobs.exists(sketch_key(jobs["bob"], 0))
    assert service.blobs.exists(style_reference_key(styles["bob"], refs["bob"]))
    assert client.get(f"/v1/jobs/{jobs['bob']}", headers=BOB).status_code == 200
    assert service.jobs.find_idempotent("bob", "k") is not None
    assert service.jobs.find_idempotent("alice", "k") is None
