"""Pick the blob store from ``SKETCHGEN_BLOB_URL``: ``gs://``, ``s3://`` or ``file://``
(bootstrap passes the URL and, for an S3-compatible server, its endpoint)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from sketchgen.errors import InputError
from sketchgen.ports import BlobStore

__all__ = ["blob_store_from_url"]


def blob_store_from_url(url: str, *, s3_endpoint_url: str | None = None) -> BlobStore:
    parsed = urlparse(url)
    prefix = parsed.path.strip("/")
    if parsed.scheme == "gs" and parsed.netloc:
        from sketchgen.adapters.gcp.gcs_blob_store import GcsBlobStore

        return GcsBlobStore(parsed.netloc, prefix=prefix)
    if parsed.scheme == "s3" and parsed.netloc:
        from sketchgen.adapters.s3_blob_store import S3BlobStore

        return S3BlobStore(parsed.netloc, prefix=prefix, endpoint_url=s3_endpoint_url)
    if parsed.scheme == "file":
        from sketchgen.adapters.local.blob_store import LocalBlobStore

        # file:///abs/path, or file://relative/path for a folder under the working directory
        return LocalBlobStore(
            Path(parsed.netloc + parsed.path) if parsed.netloc else Path(parsed.path)
        )
    raise InputError(
        f"unsupported blob URL {url!r}",
        field="SKETCHGEN_BLOB_URL",
        allowed=("gs://bucket/prefix", "s3://bucket/prefix", "file:///path"),
    )
