"""Response headers (issue 23, item 9): the page may connect only to our origins and the
Firebase hosts it needs; HSTS over HTTPS (here or at the front end); per-user JSON is never
cached."""

from __future__ import annotations

from pathlib import Path

import pytest
from werkzeug.test import Client

from sketchgen.api.routes_web import FIREBASE_AUTH_ORIGINS, page_headers
from sketchgen.bootstrap import build_api, build_service
from sketchgen.bootstrap.edge import _connect_origins
from sketchgen.jobs import JobRequest
from sketchgen.services import SketchService
from sketchgen.settings import Settings

ALICE = {"Authorization": "Bearer dev:alice"}


def _connect_src(policy: str) -> list[str]:
    directive = next(d for d in policy.split("; ") if d.startswith("connect-src "))
    return directive.split()[1:]


def test_connect_src_lists_only_named_origins() -> None:
    sources = _connect_src(
        page_headers(["https://stream.example.run.app"])["Content-Security-Policy"]
    )
    assert sources == ["'self'", *FIREBASE_AUTH_ORIGINS, "https://stream.example.run.app"]
    assert "https:" not in sources and "*" not in sources


def test_the_deployment_names_its_stream_and_signed_url_hosts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in (
        "STORAGE_EMULATOR_HOST",
        "SKETCHGEN_S3_ENDPOINT_URL",
        "FIREBASE_AUTH_EMULATOR_HOST",
    ):
        monkeypatch.delenv(name, raising=False)
    cloud = Settings(
        blob_url="gs://bucket", events_base_url="https://stream-abc.a.run.app/", auth="firebase"
    )
    assert _connect_origins(cloud) == [
        "https://stream-abc.a.run.app",
        "https://storage.googleapis.com",
    ]
    assert _connect_origins(Settings(blob_url="s3://bucket")) == ["https://*.amazonaws.com"]
    assert _connect_origins(Settings(blob_url="file:///tmp/x")) == []
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9023")
    monkeypatch.setenv("FIREBASE_AUTH_EMULATOR_HOST", "127.0.0.1:9099")
    assert _connect_origins(Settings(blob_url="gs://bucket")) == [
        "http://127.0.0.1:9023",
        "http://127.0.0.1:9099",
        "https://storage.googleapis.com",
    ]


@pytest.fixture
def service(tmp_path: Path) -> SketchService:
    settings = Settings(
        job_store="memory://", blob_url=f"file://{tmp_path / 'blobs'}", offline=True, auth="dev"
    )
    return build_service(settings)


@pytest.fixture
def client(service: SketchService) -> Client:
    return Client(build_api(lambda: service, Settings(auth="dev", offline=True)))


def test_hsts_only_over_https(client: Client) -> None:
    assert "Strict-Transport-Security" not in client.get("/healthz").headers
    for answer in (
        client.get("/healthz", base_url="https://api.example.com"),
        client.get("/healthz", headers={"X-Forwarded-Proto": "https"}),
        client.get("/v1/usage", headers={"X-Forwarded-Proto": "https, http"}),  # 401 too
        client.get("/", headers={"X-Forwarded-Proto": "https"}),
    ):
        assert answer.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert (
        "Strict-Transport-Security"
        not in client.get("/healthz", headers={"X-Forwarded-Proto": "http"}).headers
    )


def test_job_json_usage_and_signed_urls_are_not_cached(
    client: Client, service: SketchService
) -> None:
    job, _ = service.submission.submit_job(
        "alice", JobRequest(brief="golf mascot", style_id="loose-ink-mascot", num_images=1)
    )
    service.queue.join()
    for answer in (
        client.post(
            "/v1/jobs",
            json={"brief": "a cat", "style_id": "loose-ink-mascot", "num_images": 1},
            headers=ALICE,
        ),
        client.get(f"/v1/jobs/{job.job_id}", headers=ALICE),  # its sketches' URLs
        client.post(f"/v1/jobs/{job.job_id}/cancel", headers=ALICE),
        client.get("/v1/usage", headers=ALICE),
        client.get("/v1/styles", headers=ALICE),
        client.get(f"/v1/jobs/{job.job_id}", headers={"Authorization": "Bearer dev:bob"}),
    ):
        assert answer.status_code < 500
        assert answer.headers["Cache-Control"] == "no-store", answer.request.path
    # A file keeps its own (private) caching: it is the image, not a URL to it.
    done = client.get(f"/v1/jobs/{job.job_id}", headers=ALICE).json
    assert done["status"] == "done"
    name = done["sketches"][0]["url"].rsplit("/", 1)[1]
    file = client.get(f"/v1/jobs/{job.job_id}/files/{name}", headers=ALICE)
    assert file.status_code == 200 and file.headers["Cache-Control"].startswith("private")
