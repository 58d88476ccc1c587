from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.functions.conftest import ALICE, BOB

BODY = {"brief": "playful golf mascot", "style_id": "loose-ink-mascot", "num_images": 3, "seed": 4}


def test_submit_poll_and_download(
    api: FlaskClient, wait_done: Callable[..., dict[str, Any]]
) -> None:
    response = api.post("/v1/jobs", json=BODY, headers=ALICE)
    assert response.status_code == 202, response.get_json()
    created = response.get_json()
    assert set(created) == {"job_id", "status", "status_url", "events_url", "firestore_doc"}
    assert created["status"] == "queued"
    assert created["firestore_doc"] == f"jobs/{created['job_id']}"
    assert response.headers["Location"] == created["status_url"]
    done = wait_done(created["job_id"])
    assert done["status"] == "done"
    assert [s["index"] for s in done["sketches"]] == [0, 1, 2]
    for sketch in done["sketches"]:
        assert sketch["status"] == "ok" and sketch["error"] is None
        png = api.get(sketch["url"].replace("http://localhost", ""), headers=ALICE)
        assert png.status_code == 200 and png.data[:8] == b"\x89PNG\r\n\x1a\n"
    meta = api.get(done["metadata_url"].replace("http://localhost", ""), headers=ALICE).get_json()
    assert meta["job_id"] == created["job_id"] and meta["status"] == "done"
    # Another user cannot read the files either.
    assert (
        api.get(done["metadata_url"].replace("http://localhost", ""), headers=BOB).status_code
        == 404
    )


def test_idempotency_key(api: FlaskClient) -> None:
    headers = {**ALICE, "Idempotency-Key": "abc-123"}
    first = api.post("/v1/jobs", json=BODY, headers=headers)
    again = api.post("/v1/jobs", json=BODY, headers=headers)
    assert first.status_code == again.status_code == 202
    assert first.get_json()["job_id"] == again.get_json()["job_id"]
    other = api.post("/v1/jobs", json={**BODY, "num_images": 4}, headers=headers)
    assert other.status_code == 409
    assert other.get_json()["error"]["field"] == "Idempotency-Key"


def test_auth_and_isolation(api: FlaskClient) -> None:
    job_id = api.post("/v1/jobs", json=BODY, headers=ALICE).get_json()["job_id"]
    bad = ["", "Basic x", "Bearer nope", "Bearer dev:", "Bearer dev:a/b", "Bearer  "]
    for headers in ({"Authorization": value} if value else {} for value in bad):
        response = api.get(f"/v1/jobs/{job_id}", headers=headers)
        assert response.status_code == 401
        assert response.get_json()["error"]["code"] == "unauthenticated"
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert api.get(f"/v1/jobs/{job_id}", headers=BOB).status_code == 404
    assert api.post(f"/v1/jobs/{job_id}/cancel", headers=BOB).status_code == 404
    assert api.get("/v1/styles").status_code == 401
    assert api.get("/healthz").status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({**BODY, "brief": ""}, 422, "brief"),
        ({**BODY, "brief": "  \x00 "}, 422, "brief"),
        ({**BODY, "brief": "x" * 5000}, 422, "brief"),
        ({**BODY, "brief": 7}, 422, "brief"),
        ({k: v for k, v in BODY.items() if k != "brief"}, 422, "brief"),
        ({**BODY, "style_id": "nope"}, 422, "style_id"),
        ({**BODY, "style_id": "../../etc/passwd"}, 422, "style_id"),
        ({**BODY, "num_images": 0}, 422, "num_images"),
        ({**BODY, "num_images": 9}, 422, "num_images"),
        ({**BODY, "num_images": "4"}, 422, "num_images"),
        ({**BODY, "num_images": 2.5}, 422, "num_images"),
        ({**BODY, "image_size": "8K"}, 422, "image_size"),
        ({**BODY, "aspect_ratio": "7:3"}, 422, "aspect_ratio"),
        ({**BODY, "seed": -1}, 422, "seed"),
        ({**BODY, "seed": 2**40}, 422, "seed"),
        ({**BODY, "allow_text": "yes"}, 422, "allow_text"),
        ({**BODY, "colour": "red"}, 422, "colour"),
        ([BODY], 400, "body"),
        ("just a string", 400, "body"),
    ],
)
def test_bad_bodies_name_the_field(api: FlaskClient, body: object, status: int, field: str) -> None:
    response = api.post("/v1/jobs", json=body, headers=ALICE)
    assert response.status_code == status, response.get_json()
    error = response.get_json()["error"]
    assert error["field"] == field and error["message"] and error["code"]


def test_malformed_oversized_and_wrong_type_bodies(api: FlaskClient) -> None:
    bad_json = api.post(
        "/v1/jobs", data=b"{not json", headers={**ALICE, "Content-Type": "application/json"}
    )
    assert bad_json.status_code == 400 and bad_json.get_json()["error"]["field"] == "body"
    huge = api.post(
        "/v1/jobs",
        data=b"{" + b" " * 20000 + b"}",
        headers={**ALICE, "Content-Type": "application/json"},
    )
    assert huge.status_code == 413
    form = api.post(
        "/v1/jobs",
        data="brief=golf",
        headers={**ALICE, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code == 415 and form.get_json()["error"]["field"] == "Content-Type"
    bad_key = api.post("/v1/jobs", json=BODY, headers={**ALICE, "Idempotency-Key": "a b"})
    assert bad_key.status_code == 400


@pytest.mark.parametrize(
    "path",
    [
        "/v1/jobs/../../etc/passwd",
        "/v1/jobs/%2e%2e%2f%2e%2e",
        "/v1/jobs/20250101_000000-zzzzzz",
        "/v1/jobs/x/files/..%2fmetadata.json",
        "/v1/nothing",
    ],
)
def test_unknown_and_traversal_paths_are_404(api: FlaskClient, path: str) -> None:
    response = api.get(path, headers=ALICE)
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_wrong_method_is_405_json(api: FlaskClient) -> None:
    response = api.delete("/v1/jobs", headers=ALICE)
    assert response.status_code == 405 and response.get_json()["error"]


def test_styles(api: FlaskClient) -> None:
    styles = api.get("/v1/styles", headers=ALICE).get_json()["styles"]
    assert {"loose-ink-mascot"} <= {s["id"] for s in styles}
    one = api.get("/v1/styles/loose-ink-mascot", headers=ALICE).get_json()
    assert one["visual_rules"] and one["references"]
    missing = api.get("/v1/styles/nope", headers=ALICE)
    assert missing.status_code == 404 and missing.get_json()["error"]["field"] == "style_id"
