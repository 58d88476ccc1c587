"""The API reuses a blob URL it made recently: a thousand streams of one job that end
together ask for the same metadata URL, and in the cloud each signature is a signBlob call."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from sketchgen.api.core import Routing


class SigningBlobs:
    def __init__(self) -> None:
        self.signed = 0

    def signed_url(self, key: str, *, expires_s: int) -> str:
        self.signed += 1
        return f"https://storage.example/{key}?sig={self.signed}"


def _routing(blobs: Any, ttl_s: int = 900) -> Routing:
    service = SimpleNamespace(blobs=blobs)
    return Routing(
        lambda: service,
        lambda: None,
        max_body_bytes=1024,
        signed_url_ttl_s=ttl_s,
    )


def _request(host: str = "stream.example") -> Request:
    return Request(
        EnvironBuilder(path="/v1/jobs/j/events", base_url=f"https://{host}").get_environ()
    )


def test_a_recent_url_is_reused_not_signed_again() -> None:
    blobs = SigningBlobs()
    routing = _routing(blobs)
    key = "jobs/j/metadata.json"
    assert routing.cached_blob_url(_request(), key) is None
    urls = {routing.blob_url(_request(), "j", key) for _ in range(1000)}
    assert len(urls) == 1 and blobs.signed == 1
    assert routing.cached_blob_url(_request(), key) == urls.pop()
    routing.blob_url(_request(), "j", "jobs/j/sketch_0.png")
    assert blobs.signed == 2  # another key, another signature


def test_a_url_is_not_reused_past_a_third_of_its_life() -> None:
    blobs = SigningBlobs()
    routing = _routing(blobs, ttl_s=0)
    routing.blob_url(_request(), "j", "jobs/j/metadata.json")
    routing.blob_url(_request(), "j", "jobs/j/metadata.json")
    assert blobs.signed == 2
