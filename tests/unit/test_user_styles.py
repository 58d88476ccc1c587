"""Styles that users own (issue 16), through the HTTP API on local adapters: CRUD, uploads
(hostile ones included), ownership, retrieval by meaning, and jobs that record the style."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from werkzeug.test import Client

from sketchgen.api.http import Api
from sketchgen.bootstrap import build_api, build_service
from sketchgen.layout import metadata_key, style_reference_key
from sketchgen.services import SketchService
from sketchgen.settings import Settings
from tests.helpers.responses import json_of
from tests.helpers.waiting import wait_until

ALICE = {"Authorization": "Bearer dev:alice"}
BOB = {"Authorization": "Bearer dev:bob"}


@pytest.fixture
def service(tmp_path: Path) -> SketchService:
    settings = Settings(
        job_store="memory://",
        blob_url=f"file://{tmp_path / 'blobs'}",
        offline=True,
        auth="dev",
        max_styles_per_user=3,
        max_references_per_style=4,
    )
    return build_service(settings)


@pytest.fixture
def client(service: SketchService) -> Client:
    settings = Settings(auth="dev", offline=True)
    api: Api = build_api(lambda: service, settings)
    return Client(api)


def png(
    seed: int = 0, size: tuple[int, int] = (64, 48), mode: str = "RGB", fmt: str = "PNG"
) -> bytes:
    image = Image.new(mode, size, "white")
    for x in range(size[0]):
        image.putpixel((x, (x * (seed + 1)) % size[1]), (0, 0, 0) if mode == "RGB" else 0)
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def create(client: Client, headers: dict[str, str] = ALICE, **body: Any) -> str:
    answer = client.post(
        "/v1/styles", json={"name": "Team ink", "rules": ["thick ink"], **body}, headers=headers
    )
    assert answer.status_code == 201, answer.get_data(as_text=True)
    return str(json_of(answer)["style_id"])


def upload(
    client: Client,
    style_id: str,
    data: bytes,
    *,
    tags: str = "",
    description: str = "",
    filename: str = "ref.png",
    content_type: str = "image/png",
    headers: dict[str, str] = ALICE,
) -> Any:
    return client.post(
        f"/v1/styles/{style_id}/references",
        data={
            "image": (io.BytesIO(data), filename, content_type),
            "tags": tags,
            "description": description,
        },
        headers=headers,
    )


def blobs_under(service: SketchService, style_id: str) -> list[Path]:
    root = Path(service.blobs.root) / "styles" / style_id
    return sorted(root.rglob("*.png")) if root.exists() else []


# -- styles -----------------------------------------------------------------------------------


def test_create_list_get_patch_delete(client: Client) -> None:
    style_id = create(client, description="our look", negative_rules=["no halftone"])
    listed = json_of(client.get("/v1/styles", headers=ALICE))["styles"]
    assert {s["id"] for s in listed} >= {"loose-ink-mascot", "pencil-thumbnail", style_id}
    assert [s["owned"] for s in listed if s["id"] == style_id] == [True]
    shown = client.get(f"/v1/styles/{style_id}", headers=ALICE).json
    assert shown["rules"] == ["thick ink"] and shown["negative_rules"] == ["no halftone"]
    assert shown["references"] == [] and shown["version"].startswith("sv1-")
    patched = client.patch(f"/v1/styles/{style_id}", json={"rules": ["thin pencil"]}, headers=ALICE)
    assert patched.status_code == 200 and json_of(patched)["rules"] == ["thin pencil"]
    assert json_of(patched)["version"] != shown["version"]
    assert client.delete(f"/v1/styles/{style_id}", headers=ALICE).status_code == 204
    assert client.get(f"/v1/styles/{style_id}", headers=ALICE).status_code == 404


def test_bad_bodies_name_the_field(client: Client) -> None:
    answer = client.post("/v1/styles", json={"name": ""}, headers=ALICE)
    assert answer.status_code == 422 and json_of(answer)["error"]["field"] == "name"
    answer = client.post("/v1/styles", json={"name": "x", "colour": "red"}, headers=ALICE)
    assert answer.status_code == 422 and json_of(answer)["error"]["field"] == "colour"
    assert client.post("/v1/styles", json={"name": "x"}).status_code == 401
    style_id = create(client)
    answer = client.patch(f"/v1/styles/{style_id}", json={"name": "  "}, headers=ALICE)
    assert answer.status_code == 422 and json_of(answer)["error"]["field"] == "name"
    answer = client.patch(f"/v1/styles/{style_id}", json={"rules": "thick"}, headers=ALICE)
    assert answer.status_code == 422 and json_of(answer)["error"]["field"] == "rules"


def test_another_users_style_is_not_found_everywhere(
    client: Client, service: SketchService
) -> None:
    style_id = create(client)
    sha = upload(client, style_id, png(1), tags="golf").json["sha256"]
    missing = "u-" + "z" * 20
    for sid in (style_id, missing):
        for answer in (
            client.get(f"/v1/styles/{sid}", headers=BOB),
            client.patch(f"/v1/styles/{sid}", json={"name": "mine"}, headers=BOB),
            client.delete(f"/v1/styles/{sid}", headers=BOB),
            upload(client, sid, png(2), headers=BOB),
            client.get(f"/v1/styles/{sid}/references/{sha}.png", headers=BOB),
            client.patch(
                f"/v1/styles/{sid}/references/{sha}", json={"do_not_use": True}, headers=BOB
            ),
            client.delete(f"/v1/styles/{sid}/references/{sha}", headers=BOB),
            client.post("/v1/jobs", json={"brief": "golf mascot", "style_id": sid}, headers=BOB),
        ):
            assert answer.status_code == 404, (sid, answer.request.method, answer.request.path)
            assert json_of(answer)["error"]["code"] == "not_found"
            if "references/" not in answer.request.path:
                assert json_of(answer)["error"]["field"] == "style_id"
    bobs = json_of(client.get("/v1/styles", headers=BOB))["styles"]
    assert style_id not in {s["id"] for s in bobs}
    # ... and bob's attempts changed nothing.
    assert json_of(client.get(f"/v1/styles/{style_id}", headers=ALICE))["name"] == "Team ink"
    assert len(blobs_under(service, style_id)) == 1


def test_built_in_styles_are_read_only(client: Client) -> None:
    for answer in (
        client.patch("/v1/styles/loose-ink-mascot", json={"name": "mine"}, headers=ALICE),
        client.delete("/v1/styles/loose-ink-mascot", headers=ALICE),
        upload(client, "loose-ink-mascot", png()),
    ):
        assert answer.status_code == 403 and json_of(answer)["error"]["code"] == "read_only"
    shown = client.get("/v1/styles/loose-ink-mascot", headers=ALICE).json
    assert shown["owned"] is False and shown["references"][0]["thumbnail_url"].endswith(".png")


def test_style_limit(client: Client) -> None:
    for _ in range(3):
        create(client)
    answer = client.post("/v1/styles", json={"name": "one more"}, headers=ALICE)
    assert answer.status_code == 409 and json_of(answer)["error"] == {
        "code": "limit_exceeded",
        "message": "at most 3 styles a user",
        "field": "styles",
    }
    create(client, headers=BOB)  # per user


# -- references -------------------------------------------------------------------------------


def test_upload_normalises_and_stores_once(client: Client, service: SketchService) -> None:
    style_id = create(client)
    jpeg = io.BytesIO()
    exif = Image.Exif()
    exif[0x010E] = "secret camera note"  # ImageDescription
    exif[0x0112] = 6  # Orientation: rotate 90° to be upright
    Image.new("RGB", (300, 100), (200, 30, 30)).save(jpeg, format="JPEG", exif=exif.tobytes())
    first = upload(
        client,
        style_id,
        jpeg.getvalue(),
        tags="Golf, mascot ,golf",
        description="a golfer",
        filename="x.jpg",
        content_type="image/jpeg",
    )
    assert first.status_code == 201, first.get_data(as_text=True)
    sha = json_of(first)["sha256"]
    assert json_of(first)["tags"] == ["golf", "mascot"]
    stored = service.blobs.get(style_reference_key(style_id, sha))
    image = Image.open(io.BytesIO(stored))
    assert image.format == "PNG" and image.mode == "L" and image.size == (100, 300)  # upright
    assert b"secret camera note" not in stored and not image.getexif() and "exif" not in image.info
    again = upload(
        client, style_id, jpeg.getvalue(), filename="copy.jpg", content_type="image/jpeg"
    )
    assert again.status_code == 200 and json_of(again)["sha256"] == sha
    assert len(blobs_under(service, style_id)) == 1
    thumb = client.get(f"/v1/styles/{style_id}/references/{sha}.png", headers=ALICE)
    assert thumb.status_code == 200 and thumb.data == stored


def test_large_images_are_scaled_to_2048(client: Client, service: SketchService) -> None:
    style_id = create(client)
    answer = upload(
        client,
        style_id,
        png(0, (4000, 1000), fmt="WEBP"),
        filename="big.webp",
        content_type="image/webp",
    )
    assert answer.status_code == 201 and (json_of(answer)["width"], json_of(answer)["height"]) == (
        2048,
        512,
    )


def _bomb(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("1", size).save(out, format="PNG")  # compresses to a few KB
    return out.getvalue()


@pytest.mark.parametrize(
    ("name", "data", "filename", "status", "code"),
    [
        ("not an image", b"hello, this is text", "notes.png", 415, "unsupported_image_type"),
        (
            "svg named .png",
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            "x.png",
            415,
            "unsupported_image_type",
        ),
        (
            "html named .png",
            b"<!doctype html><html><body>hi</body></html>",
            "x.png",
            415,
            "unsupported_image_type",
        ),
        ("gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "x.gif", 415, "unsupported_image_type"),
        ("truncated", png(3, (400, 300))[:300], "x.png", 422, "broken_image"),
        ("bomb over our limit", _bomb((6000, 5000)), "x.png", 413, "image_too_large"),
        ("bomb over Pillow's", _bomb((20000, 20000)), "x.png", 413, "image_too_large"),
        ("empty", b"", "x.png", 422, "empty_image"),
    ],
)
def test_hostile_uploads_are_refused_and_nothing_is_stored(
    client: Client,
    service: SketchService,
    name: str,
    data: bytes,
    filename: str,
    status: int,
    code: str,
) -> None:
    style_id = create(client)
    answer = upload(client, style_id, data, filename=filename)
    assert answer.status_code == status, (name, answer.get_data(as_text=True))
    assert json_of(answer)["error"]["code"] == code and json_of(answer)["error"]["field"] == "image"
    assert blobs_under(service, style_id) == []
    assert json_of(client.get(f"/v1/styles/{style_id}", headers=ALICE))["references"] == []


def test_oversize_uploads_are_refused_before_reading(
    client: Client, service: SketchService
) -> None:
    style_id = create(client)
    answer = upload(client, style_id, b"\x89PNG\r\n\x1a\n" + bytes(10 * 1024 * 1024))
    assert answer.status_code == 413 and json_of(answer)["error"]["field"] == "image"
    assert blobs_under(service, style_id) == []


def test_upload_needs_multipart_and_an_image_field(client: Client) -> None:
    style_id = create(client)
    answer = client.post(f"/v1/styles/{style_id}/references", json={"image": "x"}, headers=ALICE)
    assert answer.status_code == 415 and json_of(answer)["error"]["field"] == "Content-Type"
    answer = client.post(
        f"/v1/styles/{style_id}/references",
        data={"tags": "x"},
        content_type="multipart/form-data",
        headers=ALICE,
    )
    assert answer.status_code == 422 and json_of(answer)["error"]["field"] == "image"


def test_reference_limit_delete_and_do_not_use(client: Client) -> None:
    style_id = create(client)
    shas = [upload(client, style_id, png(i), tags=f"tag{i}").json["sha256"] for i in range(4)]
    answer = upload(client, style_id, png(9))
    assert answer.status_code == 409 and json_of(answer)["error"]["field"] == "references"
    flagged = client.patch(
        f"/v1/styles/{style_id}/references/{shas[0]}", json={"do_not_use": True}, headers=ALICE
    )
    assert flagged.status_code == 200 and json_of(flagged)["do_not_use"] is True
    assert (
        client.delete(f"/v1/styles/{style_id}/references/{shas[1]}", headers=ALICE).status_code
        == 204
    )
    assert (
        client.delete(f"/v1/styles/{style_id}/references/{shas[1]}", headers=ALICE).status_code
        == 404
    )
    refs = json_of(client.get(f"/v1/styles/{style_id}", headers=ALICE))["references"]
    assert {r["sha256"]: r["do_not_use"] for r in refs} == {
        shas[0]: True,
        shas[2]: False,
        shas[3]: False,
    }


# -- retrieval and jobs -----------------------------------------------------------------------


def _wait_done(client: Client, job_id: str) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        job = dict(client.get(f"/v1/jobs/{job_id}", headers=ALICE).json or {})
        return job if job["status"] in {"done", "partial", "failed", "cancelled"} else None

    return wait_until(ended, f"job {job_id} did not end", timeout_s=10)


def test_a_job_retrieves_by_meaning_and_records_the_style(
    client: Client, service: SketchService
) -> None:
    style_id = create(client)
    golf = upload(
        client, style_id, png(1), tags="golf, mascot", description="golfer mascot swinging a club"
    ).json["sha256"]
    coffee = upload(
        client, style_id, png(2), tags="coffee", description="steaming coffee cup"
    ).json["sha256"]
    banned = upload(
        client, style_id, png(3), tags="golf", description="golf ball golfer mascot"
    ).json["sha256"]
    client.patch(
        f"/v1/styles/{style_id}/references/{banned}", json={"do_not_use": True}, headers=ALICE
    )
    version = json_of(client.get(f"/v1/styles/{style_id}", headers=ALICE))["version"]

    answer = client.post(
        "/v1/jobs",
        json={"brief": "a golf mascot", "style_id": style_id, "num_images": 1},
        headers=ALICE,
    )
    assert answer.status_code == 202, answer.get_data(as_text=True)
    job_id = json_of(answer)["job_id"]
    _wait_done(client, job_id)
    record = service.jobs.get_job(job_id)
    assert record is not None
    used = [(r.sha256, r.score) for r in record.plan.references]
    assert used[0][0] == golf and banned not in {s for s, _ in used}
    assert used[0][1] > dict(used).get(coffee, 0.0)
    assert record.plan.style_version == version
    metadata = json.loads(service.blobs.get(metadata_key(job_id)))
    assert metadata["style_version"] == version
    assert [r["sha256"] for r in metadata["references"]] == [s for s, _ in used]

    # The style changes; a refinement redraws from the parent's references and version,
    # less the one deleted (its image went with it), a new job from the style as it is now.
    client.delete(f"/v1/styles/{style_id}/references/{golf}", headers=ALICE)
    refined = client.post(
        f"/v1/jobs/{job_id}/sketches/0/refine", json={"instruction": "bigger club"}, headers=ALICE
    )
    assert refined.status_code == 202, refined.get_data(as_text=True)
    _wait_done(client, json_of(refined)["job_id"])
    child = service.jobs.get_job(json_of(refined)["job_id"])
    assert child is not None and child.status == "done"
    assert [r.sha256 for r in child.plan.references] == [s for s, _ in used if s != golf]
    assert child.plan.style_version == version
    fresh = client.post(
        "/v1/jobs",
        json={"brief": "a golf mascot", "style_id": style_id, "num_images": 1},
        headers=ALICE,
    )
    plan = service.jobs.get_job(json_of(fresh)["job_id"]).plan
    assert golf not in {r.sha256 for r in plan.references} and plan.style_version != version


def test_a_built_in_job_records_its_version_too(client: Client, service: SketchService) -> None:
    answer = client.post(
        "/v1/jobs",
        json={"brief": "golf mascot", "style_id": "loose-ink-mascot", "num_images": 1},
        headers=ALICE,
    )
    record = service.jobs.get_job(json_of(answer)["job_id"])
    assert record is not None and (record.plan.style_version or "").startswith("sv1-")


def test_upkeep_reembeds_on_a_model_change(service: SketchService) -> None:
    from sketchgen.references import HashingTextEmbedding
    from sketchgen.styles.owned import StyleDraft

    catalog = service.catalog
    doc = catalog.create_style("alice", StyleDraft(name="s"))
    catalog.add_reference("alice", doc.style_id, png(1), tags=("golf",), description="golfer")
    assert catalog.reembed() == 0
    catalog.embedder = HashingTextEmbedding(64)  # a new model (here: another size)
    counts = service.upkeep.sweep()
    assert counts["reembedded"] == 1
    (reference,) = catalog.store.list_references(doc.style_id)
    assert reference.embedding_model == "hashing-v1@64" and len(reference.embedding or ()) == 64


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    yield


def test_regeneration_skips_jobs_whose_style_was_deleted(
    client: Client, service: SketchService
) -> None:
    kept, gone = create(client), create(client)
    for style_id in (kept, gone):
        upload(client, style_id, png(hash(style_id) % 7), tags="golf")
    ids = []
    for style_id in (kept, gone):
        body = {"brief": "golf mascot", "style_id": style_id, "num_images": 1}
        ids.append(json_of(client.post("/v1/jobs", json=body, headers=ALICE))["job_id"])
    for job_id in ids:
        _wait_done(client, job_id)
    client.delete(f"/v1/styles/{gone}", headers=ALICE)
    made = service.batch.regenerate(job_ids=ids)
    assert [j.regenerated_from for j in made] == [ids[0]]
