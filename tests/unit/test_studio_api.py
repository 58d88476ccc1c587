"""The studio's HTTP API (issue 27) on the local stack: SQLite jobs and stars, a folder of
blobs, the offline model drawing real sketches, dev sign-in; messages delivered by hand."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from werkzeug.test import Client

from sketchgen.adapters.local.blob_store import LocalBlobStore
from sketchgen.adapters.local.favourite_store import SqliteFavouriteStore
from sketchgen.adapters.local.job_store import SqliteJobStore
from sketchgen.api.auth import DevAuthenticator
from sketchgen.api.http import Api
from sketchgen.bootstrap import assemble
from sketchgen.generate import OfflineSketchAdapter
from sketchgen.layout import job_prefix
from sketchgen.services import SketchService
from sketchgen.styles import StyleRegistry
from tests.helpers.fakes import CollectingQueue
from tests.helpers.ink import ink_of_png, ink_of_svg, tolerant_iou

ALICE = {"Authorization": "Bearer dev:alice"}
BOB = {"Authorization": "Bearer dev:bob"}


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Client, SketchService]]:
    db = tmp_path / "jobs.sqlite3"
    service = assemble(
        jobs=SqliteJobStore(db),
        blobs=LocalBlobStore(tmp_path / "blobs"),
        queue=CollectingQueue(),
        model=OfflineSketchAdapter(),
        styles=StyleRegistry(),
        favourites=SqliteFavouriteStore(db),
    )
    yield Client(Api(lambda: service, DevAuthenticator, web_config={"auth": "dev"})), service


def _run(service: SketchService) -> None:
    queue = service.queue
    assert isinstance(queue, CollectingQueue)
    tasks, queue.tasks = list(queue.tasks), []
    for task in tasks:
        service.worker.run_sketch(task)


def _job(client: Client, service: SketchService, brief: str = "golf mascot", **extra: Any) -> str:
    body = {"brief": brief, "style_id": "loose-ink-mascot", "num_images": 2, **extra}
    response = client.post("/v1/jobs", json=body, headers=ALICE)
    assert response.status_code == 202, response.get_data(as_text=True)
    _run(service)
    return str(response.get_json()["job_id"])


def _error(response: Any, status: int, field: str | None) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.get_json()["error"]["field"] == field


def test_history_lists_my_jobs_newest_first_in_pages(
    world: tuple[Client, SketchService],
) -> None:
    client, service = world
    ids = [_job(client, service, brief=f"golf mascot {i}") for i in range(3)]
    first = client.get("/v1/jobs?limit=2", headers=ALICE).get_json()
    assert [j["job_id"] for j in first["jobs"]] == ids[::-1][:2]
    assert first["next_cursor"]
    rest = client.get(f"/v1/jobs?limit=2&cursor={first['next_cursor']}", headers=ALICE)
    assert [j["job_id"] for j in rest.get_json()["jobs"]] == [ids[0]]
    assert rest.get_json()["next_cursor"] is None
    job = first["jobs"][0]
    assert job["brief"] == "golf mascot 2" and job["style_id"] == "loose-ink-mascot"
    assert job["status"] == "done" and job["created_at"] and job["parent"] is None
    thumb_url = job["sketches"][0]["thumbnail_url"]
    assert thumb_url.endswith(f"/v1/jobs/{ids[2]}/sketches/0/thumbnail")
    # Search by brief, filter by style; Bob sees none of it.
    found = client.get("/v1/jobs?q=MASCOT%201", headers=ALICE).get_json()["jobs"]
    assert [j["job_id"] for j in found] == [ids[1]]
    assert client.get("/v1/jobs?style=pencil", headers=ALICE).get_json()["jobs"] == []
    assert client.get("/v1/jobs", headers=BOB).get_json() == {"jobs": [], "next_cursor": None}


def test_thumbnails_are_made_once_on_first_request(world: tuple[Client, SketchService]) -> None:
    client, service = world
    job_id = _job(client, service)
    key = f"{job_prefix(job_id)}/thumbnails/sketch_0.png"
    assert not service.blobs.exists(key)
    response = client.get(f"/v1/jobs/{job_id}/sketches/0/thumbnail", headers=ALICE)
    assert response.status_code == 200 and response.mimetype == "image/png"
    with Image.open(io.BytesIO(response.get_data())) as thumb:
        assert max(thumb.size) == 256
    assert service.blobs.get(key) == response.get_data()
    assert client.get(f"/v1/jobs/{job_id}/sketches/0/thumbnail", headers=BOB).status_code == 404


def test_favourites_star_list_and_unstar(world: tuple[Client, SketchService]) -> None:
    client, service = world
    job_id = _job(client, service)
    star = f"/v1/jobs/{job_id}/sketches/1/favourite"
    assert client.put(star, headers=ALICE).status_code == 204
    assert client.put(star, headers=ALICE).status_code == 204  # idempotent
    listed = client.get("/v1/favourites", headers=ALICE).get_json()
    assert [(s["job_id"], s["index"]) for s in listed["sketches"]] == [(job_id, 1)]
    assert listed["sketches"][0]["brief"] == "golf mascot"
    history = client.get("/v1/jobs", headers=ALICE).get_json()["jobs"][0]
    assert [s["favourite"] for s in history["sketches"]] == [False, True]
    # Bob can neither star Alice's sketch nor see her stars.
    assert client.put(star, headers=BOB).status_code == 404
    assert client.get("/v1/favourites", headers=BOB).get_json()["sketches"] == []
    assert client.put(f"/v1/jobs/{job_id}/sketches/9/favourite", headers=ALICE).status_code == 404
    assert client.delete(star, headers=ALICE).status_code == 204
    assert client.get("/v1/favourites", headers=ALICE).get_json()["sketches"] == []


@pytest.mark.parametrize(
    ("fmt", "mimetype"),
    [
        ("svg", "image/svg+xml"),
        ("png", "image/png"),
        ("psd", "image/vnd.adobe.photoshop"),
        ("ora", "image/openraster"),
    ],
)
def test_export_each_format(fmt: str, mimetype: str, world: tuple[Client, SketchService]) -> None:
    client, service = world
    job_id = _job(client, service)
    url = f"/v1/jobs/{job_id}/sketches/0/export?format={fmt}"
    response = client.get(url, headers=ALICE)
    assert response.status_code == 200 and response.mimetype == mimetype
    assert f'filename="{job_id}_sketch_0.' in response.headers["Content-Disposition"]
    data = response.get_data()
    sketch = service.blobs.get(f"jobs/{job_id}/sketch_0.png")
    if fmt == "svg":
        assert tolerant_iou(ink_of_svg(data), ink_of_png(sketch), 3) >= 0.8
    elif fmt == "ora":
        assert zipfile.ZipFile(io.BytesIO(data)).namelist()[0] == "mimetype"
    assert client.get(url, headers=ALICE).get_data() == data  # kept, not made again
    assert client.get(url, headers=BOB).status_code == 404


def test_export_bad_format_or_sketch(world: tuple[Client, SketchService]) -> None:
    client, service = world
    job_id = _job(client, service)
    base = f"/v1/jobs/{job_id}/sketches"
    _error(client.get(f"{base}/0/export?format=gif", headers=ALICE), 422, "format")
    _error(client.get(f"{base}/0/export", headers=ALICE), 422, "format")
    assert client.get(f"{base}/7/export?format=svg", headers=ALICE).status_code == 404
    assert client.get(f"{base}/0/export?format=svg").status_code == 401


def test_list_rejects_bad_parameters_naming_them(world: tuple[Client, SketchService]) -> None:
    client, _ = world
    _error(client.get("/v1/jobs?limit=0", headers=ALICE), 422, "limit")
    _error(client.get("/v1/jobs?limit=abc", headers=ALICE), 422, "limit")
    _error(client.get("/v1/jobs?limit=1000", headers=ALICE), 422, "limit")
    _error(client.get("/v1/jobs?cursor=nonsense", headers=ALICE), 422, "cursor")
    _error(client.get("/v1/jobs?q=" + "x" * 300, headers=ALICE), 422, "q")
    _error(client.get("/v1/favourites?cursor=%%%", headers=ALICE), 422, "cursor")
    assert client.get("/v1/jobs").status_code == 401
    assert client.get("/v1/favourites").status_code == 401


def test_delete_job_takes_everything_with_it(world: tuple[Client, SketchService]) -> None:
    client, service = world
    job_id = _job(client, service)
    keep = _job(client, service, brief="space fox")
    client.put(f"/v1/jobs/{job_id}/sketches/0/favourite", headers=ALICE)
    client.get(f"/v1/jobs/{job_id}/sketches/0/thumbnail", headers=ALICE)
    client.get(f"/v1/jobs/{job_id}/sketches/0/export?format=svg", headers=ALICE)
    folder = Path(service.blobs.root) / job_prefix(job_id)
    assert (folder / "thumbnails").is_dir() and (folder / "exports").is_dir()
    assert client.delete(f"/v1/jobs/{job_id}", headers=BOB).status_code == 404
    assert client.delete(f"/v1/jobs/{job_id}", headers=ALICE).status_code == 204
    assert not folder.exists()
    assert client.get(f"/v1/jobs/{job_id}", headers=ALICE).status_code == 404
    assert client.delete(f"/v1/jobs/{job_id}", headers=ALICE).status_code == 404
    assert client.get("/v1/favourites", headers=ALICE).get_json()["sketches"] == []
    assert [j["job_id"] for j in client.get("/v1/jobs", headers=ALICE).get_json()["jobs"]] == [keep]
    assert service.blobs.exists(f"jobs/{keep}/sketch_0.png")


def test_deleting_a_running_job_cancels_it_first(world: tuple[Client, SketchService]) -> None:
    client, service = world
    response = client.post(
        "/v1/jobs",
        json={"brief": "golf mascot", "style_id": "loose-ink-mascot", "num_images": 2},
        headers=ALICE,
    )
    job_id = response.get_json()["job_id"]
    assert client.delete(f"/v1/jobs/{job_id}", headers=ALICE).status_code == 204
    _run(service)  # the queued messages arrive after the delete: nothing is drawn
    assert service.jobs.get_job(job_id) is None
    assert not service.blobs.exists(f"jobs/{job_id}/sketch_0.png")


def test_variations_keep_the_sketchs_layout_and_seed(world: tuple[Client, SketchService]) -> None:
    client, service = world
    parent_id = _job(client, service, seed=41)
    response = client.post(
        f"/v1/jobs/{parent_id}/sketches/1/variations", json={"num_images": 3}, headers=ALICE
    )
    assert response.status_code == 202, response.get_data(as_text=True)
    body = response.get_json()
    assert body["parent"] == {"job_id": parent_id, "index": 1, "instruction": None}
    _run(service)
    parent = service.jobs.get_job(parent_id)
    child = service.jobs.get_job(body["job_id"])
    assert parent is not None and child is not None and child.status == "done"
    kept = parent.plan.variations[1]
    assert {v.layout for v in child.plan.variations} == {kept.layout}
    exaggerations = [v.exaggeration for v in child.plan.variations]
    assert exaggerations[-1] == kept.exaggeration and len(set(exaggerations)) == 3
    assert child.plan.seed == (parent.plan.seed + 1) % 2**31  # the sketch's own seed
    assert child.request.brief == parent.request.brief
    # The first variation is drawn with exactly the seed the sketch was drawn with.
    parent_plan = service.stored.job_plan(parent)
    child_plan = service.stored.job_plan(child)
    assert child_plan.request(0).seed == parent_plan.request(1).seed
    assert service.stored.images(child_plan).input_image is None  # drawn afresh, not redrawn
    assert "Change requested" not in child_plan.request(0).prompt
    # Lineage in the history.
    listed = client.get("/v1/jobs", headers=ALICE).get_json()["jobs"]
    assert listed[0]["parent"] == {
        "job_id": parent_id,
        "index": 1,
        "kind": "variation",
        "instruction": None,
    }
    assert (
        client.post(
            f"/v1/jobs/{parent_id}/sketches/1/variations", json={"num_images": 3}, headers=BOB
        ).status_code
        == 404
    )
    _error(
        client.post(
            f"/v1/jobs/{parent_id}/sketches/1/variations", json={"num_images": "3"}, headers=ALICE
        ),
        422,
        "num_images",
    )
    _error(
        client.post(
            f"/v1/jobs/{parent_id}/sketches/1/variations", json={"num_images": 99}, headers=ALICE
        ),
        422,
        "num_images",
    )


def test_archive_can_hold_every_format(world: tuple[Client, SketchService]) -> None:
    client, service = world
    job_id = _job(client, service)
    plain = zipfile.ZipFile(
        io.BytesIO(client.get(f"/v1/jobs/{job_id}/archive.zip", headers=ALICE).get_data())
    )
    assert sorted(plain.namelist()) == sorted(
        f"{job_id}/{n}" for n in ("sketch_0.png", "sketch_1.png", "metadata.json")
    )
    response = client.get(f"/v1/jobs/{job_id}/archive.zip?formats=all", headers=ALICE)
    names = set(zipfile.ZipFile(io.BytesIO(response.get_data())).namelist())
    for index in (0, 1):
        for name in ("svg", "transparent.png", "psd", "ora"):
            assert f"{job_id}/sketch_{index}.{name}" in names
    _error(
        client.get(f"/v1/jobs/{job_id}/archive.zip?formats=svg,gif", headers=ALICE), 422, "format"
    )
