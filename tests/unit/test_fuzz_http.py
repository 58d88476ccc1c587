"""Property-based fuzzing of every HTTP endpoint: whatever arrives, the answer is a clear
4xx JSON error (or success), never a 5xx, and storage is never touched outside the job's own
prefix."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import Client

from sketchgen.adapters.local.blob_store import LocalBlobStore
from sketchgen.adapters.local.job_store import MemoryJobStore
from sketchgen.api.auth import DevAuthenticator
from sketchgen.api.http import Api
from sketchgen.bootstrap import assemble
from sketchgen.jobs import JobRequest
from sketchgen.styles import StyleRegistry
from tests.helpers.fakes import CollectingQueue, FakeImageModel, published

ALICE = {"Authorization": "Bearer dev:alice"}
JOB_ID = re.compile(r"^[0-9a-f]{20}$")  # a service job's id: random (metadata.random_job_id)
FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


class WatchedBlobs:
    """Records every key the service reads or writes."""

    def __init__(self, inner: LocalBlobStore) -> None:
        self.inner = inner
        self.keys: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if not callable(attribute):
            return attribute

        def watched(key: str, *args: Any, **kwargs: Any) -> Any:
            self.keys.append(key)
            return attribute(key, *args, **kwargs)

        return watched


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Client, WatchedBlobs, str]]:
    root = tmp_path_factory.mktemp("fuzz")
    blobs = WatchedBlobs(LocalBlobStore(root / "blobs"))
    service = assemble(
        jobs=MemoryJobStore(), blobs=blobs, queue=CollectingQueue(),
        model=FakeImageModel(), styles=StyleRegistry(),
    )  # fmt: skip
    job, _ = service.submission.submit_job(
        "alice", JobRequest(brief="golf mascot", style_id="loose-ink-mascot", num_images=2)
    )
    for task in published(service):
        service.worker.run_sketch(task)
    api = Api(lambda: service, DevAuthenticator, web_config={"auth": "dev"})
    yield Client(api), blobs, job.job_id


def _header(text: str) -> str:
    """As a header can carry it: latin-1, no line breaks (HTTP cannot send those)."""
    return re.sub(r"[\r\n]", "", text.encode("utf-8", "replace").decode("latin-1"))


def _check(response: Any) -> None:
    assert response.status_code < 500, response.get_data(as_text=True)[:300]
    if response.status_code >= 400 and response.status_code != 401:
        body = json.loads(response.get_data())
        error = body["error"]
        assert error["code"] and error["message"] and "Traceback" not in error["message"]


def _keys_stay_in_their_job(blobs: WatchedBlobs) -> None:
    for key in blobs.keys:
        parts = key.split("/")
        assert parts[0] == "jobs" and JOB_ID.match(parts[1]) and len(parts) == 3, key
        assert ".." not in key and "\\\\" not in key
    blobs.keys.clear()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=50),
    lambda inner: st.lists(inner, max_size=5)
    | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20,
)  # fmt: skip
fields = st.sampled_from(
    ["brief", "style_id", "num_images", "image_size", "aspect_ratio", "model", "seed",
     "allow_text", "deadline_s", "unknown", "__proto__"]
)  # fmt: skip
bodies = st.dictionaries(fields, json_values, max_size=8) | json_values
nasty_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40
) | st.sampled_from(
    ["..", "../..", "%2e%2e", "%2e%2e%2f", "..%2f..%2fetc%2fpasswd", "..\\\\..", "%00",
     "sketch_0.png/../../x", "metadata.json", "sketch_0.png", "sketch_9.png", "a" * 5000,
     "20261125_010101-abcdef", "/etc/passwd", "%252e%252e"]
)  # fmt: skip


@FUZZ
@given(body=bodies, idempotency=st.none() | nasty_text)
def test_create_job_fuzz(world: tuple[Client, WatchedBlobs, str], body: Any,
                         idempotency: str | None) -> None:  # fmt: skip
    client, blobs, _ = world
    headers = dict(ALICE)
    if idempotency is not None:
        headers["Idempotency-Key"] = _header(idempotency)
    response = client.post("/v1/jobs", json=body, headers=headers)
    _check(response)
    if response.status_code == 202:
        assert isinstance(body, dict) and body.get("brief") and body.get("style_id")
    _keys_stay_in_their_job(blobs)


@FUZZ
@given(raw=st.binary(max_size=300), content_type=st.sampled_from(
    ["application/json", "text/plain", "application/json; charset=latin-1", "",
     "multipart/form-data"]))  # fmt: skip
def test_raw_bodies(world: tuple[Client, WatchedBlobs, str], raw: bytes, content_type: str) -> None:
    client, blobs, job_id = world
    for path in ("/v1/jobs", f"/v1/jobs/{job_id}/sketches/0/refine"):
        response = client.post(path, data=raw, headers={**ALICE, "Content-Type": content_type})
        _check(response)
        assert response.status_code in {202, 400, 404, 413, 415, 422}
    _keys_stay_in_their_job(blobs)


@FUZZ
@given(a=nasty_text, b=nasty_text, method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]))
def test_paths(world: tuple[Client, WatchedBlobs, str], a: str, b: str, method: str) -> None:
    client, blobs, job_id = world
    from urllib.parse import quote

    qa, qb = quote(a, safe=""), quote(b, safe="")
    paths = [
        f"/v1/jobs/{qa}", f"/v1/jobs/{qa}/cancel", f"/v1/jobs/{qa}/events",
        f"/v1/jobs/{qa}/files/{qb}", f"/v1/jobs/{job_id}/files/{qa}",
        f"/v1/jobs/{qa}/archive.zip", f"/v1/jobs/{job_id}/sketches/{qa}/refine",
        f"/v1/styles/{qa}", f"/v1/styles/{qa}/references/{qb}.png", f"/static/{qa}",
        f"/{qa}/{qb}",
    ]  # fmt: skip
    for path in paths:
        response = client.open(path, method=method, headers=ALICE)
        _check(response)
        if path.startswith(f"/v1/jobs/{job_id}/files/") and response.status_code == 200:
            assert a in {"sketch_0.png", "sketch_1.png", "metadata.json"}
    _keys_stay_in_their_job(blobs)


@FUZZ
@given(token=nasty_text)
def test_any_authorization_header(world: tuple[Client, WatchedBlobs, str], token: str) -> None:
    client, _, job_id = world
    response = client.get(
        f"/v1/jobs/{job_id}", headers={"Authorization": _header(f"Bearer {token}")}
    )
    _check(response)
    if response.status_code == 200:  # only the owner's dev token opens it
        assert token == "dev:alice"
    else:
        assert response.status_code in {401, 404}


def test_another_users_job_and_files_are_404(world: tuple[Client, WatchedBlobs, str]) -> None:
    client, _, job_id = world
    bob = {"Authorization": "Bearer dev:bob"}
    for path in (f"/v1/jobs/{job_id}", f"/v1/jobs/{job_id}/files/sketch_0.png",
                 f"/v1/jobs/{job_id}/archive.zip", f"/v1/jobs/{job_id}/events"):  # fmt: skip
        assert client.get(path, headers=bob).status_code == 404
    assert client.get(f"/v1/jobs/{job_id}/files/sketch_0.png", headers=ALICE).status_code == 200


def test_nothing_written_outside_the_blob_root(
    world: tuple[Client, WatchedBlobs, str], tmp_path: Path
) -> None:
    client, blobs, _ = world
    root = Path(blobs.inner.root)
    outside = sorted(p for p in root.parent.rglob("*") if not p.is_relative_to(root))
    for path in ("/v1/jobs/..%2F..%2Fescape/files/x.png", "/v1/jobs/%2e%2e/cancel"):
        _check(client.post(path, headers=ALICE))
    assert sorted(p for p in root.parent.rglob("*") if not p.is_relative_to(root)) == outside
