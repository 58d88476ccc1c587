"""Caps in the same transaction as the write, deletions that take the images with them, and
``DELETE /v1/me`` (issue 23, item 8), on the local stores (memory and SQLite)."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from werkzeug.test import Client

from sketchgen.adapters.local.blob_store import LocalBlobStore
from sketchgen.adapters.local.style_store import MemoryStyleStore, SqliteStyleStore
from sketchgen.api.http import Api
from sketchgen.bootstrap import build_api, build_service
from sketchgen.errors import LimitError
from sketchgen.layout import sketch_key, style_reference_key
from sketchgen.ports import StyleStore
from sketchgen.services import SketchService
from sketchgen.settings import Settings
from sketchgen.styles.owned import ReferenceDoc, StyleDoc
from tests.helpers.responses import json_of

ALICE = {"Authorization": "Bearer dev:alice"}
BOB = {"Authorization": "Bearer dev:bob"}


def _png(seed: int) -> bytes:
    image = Image.new("L", (40, 30), 255)
    for x in range(40):
        image.putpixel((x, (x * (seed + 3)) % 30), 0)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(params=["memory", "sqlite"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], StyleStore]:
    """Handles on one store (a SQLite file is opened once per handle, as processes do)."""
    if request.param == "memory":
        shared = MemoryStyleStore()
        return lambda: shared
    return lambda: SqliteStyleStore(tmp_path / "styles.sqlite3")


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


def test_concurrent_styles_cannot_pass_the_cap_by_one(make_store: Callable[[], StyleStore]) -> None:
    make_store().create_style(StyleDoc(style_id="us_0", owner_uid="alice", name="first"))

    def create(i: int) -> None:
        doc = StyleDoc(style_id=f"us_{i + 1}", owner_uid="alice", name=f"s{i}")
        make_store().create_style(doc, limit=3)

    outcomes = _race(6, create)
    assert sum(o is None for o in outcomes) == 2
    assert all(o is None or isinstance(o, LimitError) for o in outcomes)
    assert len(make_store().list_styles("alice")) == 3
    make_store().create_style(StyleDoc(style_id="us_b", owner_uid="bob", name="b"), limit=3)


def test_concurrent_references_cannot_pass_the_cap_by_one(
    make_store: Callable[[], StyleStore],
) -> None:
    make_store().create_style(StyleDoc(style_id="us_s", owner_uid="alice", name="s"))

    def add(i: int) -> None:
        reference = ReferenceDoc(sha256=f"{i:064x}", description=f"r{i}")
        make_store().add_reference("us_s", reference, limit=4)

    outcomes = _race(8, add)
    assert sum(o is None for o in outcomes) == 4
    assert all(o is None or isinstance(o, LimitError) for o in outcomes)
    assert len(make_store().list_references("us_s")) == 4
    style = make_store().get_style("us_s")
    assert style is not None and style.revision == 4  # bumped once per reference added
    # The same image again is no second reference, and no error even at the cap.
    kept = make_store().list_references("us_s")[0].sha256
    assert not make_store().add_reference("us_s", ReferenceDoc(sha256=kept), limit=4)


# -- through the service and the HTTP API ---------------------------------------------------------


@pytest.fixture
def service(tmp_path: Path) -> SketchService:
    settings = Settings(
        job_store=f"sqlite:///{tmp_path / 'jobs.sqlite3'}",
        blob_url=f"file://{tmp_path / 'blobs'}",
        offline=True,
        auth="dev",
        max_references_per_style=3,
    )
    return build_service(settings)


@pytest.fixture
def client(service: SketchService) -> Client:
    api: Api = build_api(lambda: service, Settings(auth="dev", offline=True))
    return Client(api)


def _style(client: Client, headers: dict[str, str]) -> str:
    answer = client.post("/v1/styles", json={"name": "Ink"}, headers=headers)
    assert answer.status_code == 201
    return str(json_of(answer)["style_id"])


def _upload(client: Client, style_id: str, seed: int, headers: dict[str, str]) -> Any:
    answer = client.post(
        f"/v1/styles/{style_id}/references",
        data={"image": (io.BytesIO(_png(seed)), "r.png", "image/png"), "tags": "fox"},
        headers=headers,
    )
    assert answer.status_code == 201, answer.get_data(as_text=True)
    return json_of(answer)["sha256"]


def test_deleting_a_reference_or_a_style_deletes_its_images(
    client: Client, service: SketchService
) -> None:
    style_id = _style(client, ALICE)
    first, second = _upload(client, style_id, 1, ALICE), _upload(client, style_id, 2, ALICE)
    blobs = service.blobs
    assert blobs.exists(style_reference_key(style_id, first))
    url = f"/v1/styles/{style_id}/references/{first}"
    assert client.delete(url, headers=ALICE).status_code == 204
    assert not blobs.exists(style_reference_key(style_id, first))
    assert blobs.exists(style_reference_key(style_id, second))
    assert client.delete(f"/v1/styles/{style_id}", headers=ALICE).status_code == 204
    assert not blobs.exists(style_reference_key(style_id, second))


def test_an_upload_refused_at_the_cap_leaves_no_image_behind(
    client: Client, service: SketchService
) -> None:
    style_id = _style(client, ALICE)
    for seed in range(3):
        _upload(client, style_id, seed, ALICE)
    refused = client.post(
        f"/v1/styles/{style_id}/references",
        data={"image": (io.BytesIO(_png(9)), "r.png", "image/png"), "tags": "fox"},
        headers=ALICE,
    )
    assert refused.status_code == 409
    assert json_of(refused)["error"]["field"] == "references"
    folder = getattr(service.blobs, "blobs", service.blobs)  # under its tracing wrapper
    assert isinstance(folder, LocalBlobStore)
    stored = list((folder.root / "styles" / style_id / "references").iterdir())
    assert len(stored) == 3


def test_delete_me_removes_everything_the_caller_owns_and_nothing_else(
    client: Client, service: SketchService
) -> None:
    body = {"brief": "golf mascot", "style_id": "loose-ink-mascot", "num_images": 2}
    jobs = {}
    for who, headers in (("alice", ALICE), ("bob", BOB)):
        answer = client.post("/v1/jobs", json=body, headers={**headers, "Idempotency-Key": "k"})
        assert answer.status_code == 202
        jobs[who] = json_of(answer)["job_id"]
    join = getattr(service.queue, "join", None)
    if join is not None:
        join()
    styles = {who: _style(client, h) for who, h in (("alice", ALICE), ("bob", BOB))}
    refs = {who: _upload(client, styles[who], 1, h) for who, h in (("alice", ALICE), ("bob", BOB))}
    assert service.blobs.exists(sketch_key(jobs["alice"], 0))
    for who, headers in (("alice", ALICE), ("bob", BOB)):
        starred = client.put(f"/v1/jobs/{jobs[who]}/sketches/1/favourite", headers=headers)
        assert starred.status_code in (200, 204), starred.data

    assert client.delete("/v1/me").status_code == 401  # signed in, or nothing
    answer = client.delete("/v1/me", headers=ALICE)
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    deleted = json_of(answer)["deleted"]
    assert deleted["jobs"] == 1 and deleted["styles"] == 1 and deleted["job_files"] >= 2

    # Nothing of alice's is left...
    assert client.get(f"/v1/jobs/{jobs['alice']}", headers=ALICE).status_code == 404
    assert service.jobs.list_jobs(owner_uid="alice") == []
    assert service.jobs.find_idempotent("alice", "k") is None
    assert not service.blobs.exists(sketch_key(jobs["alice"], 0))
    assert service.studio.favourites.list_favourites("alice", limit=10) == []
    assert service.catalog.own_styles("alice") == []
    assert not service.blobs.exists(style_reference_key(styles["alice"], refs["alice"]))
    assert service.spend is not None
    usage = service.spend.ledger.usage("alice")
    assert usage.jobs == {}  # no job of hers is named any more
    assert usage.images_used == 2  # today's budget is not handed back
    # ...and bob's is all there.
    assert client.get(f"/v1/jobs/{jobs['bob']}", headers=BOB).status_code == 200
    assert service.blobs.exists(sketch_key(jobs["bob"], 0))
    assert len(service.studio.favourites.list_favourites("bob", limit=10)) == 1
    assert [s.style_id for s in service.catalog.own_styles("bob")] == [styles["bob"]]
    assert service.blobs.exists(style_reference_key(styles["bob"], refs["bob"]))
    assert service.jobs.find_idempotent("bob", "k") is not None
    # Again: nothing left to delete, and no error.
    again = json_of(client.delete("/v1/me", headers=ALICE))["deleted"]
    assert again == {"jobs": 0, "job_files": 0, "styles": 0}
