"""``GcsBlobStore``: job outputs in a Cloud Storage bucket, read back through V4 signed URLs."""

from __future__ import annotations

import os
import threading
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from sketchgen.adapters.keys import check_key
from sketchgen.errors import NotFoundError, StorageError

__all__ = ["GcsBlobStore"]


class GcsBlobStore:
    def __init__(self, bucket: str, *, prefix: str = "", client: Any | None = None) -> None:
        self.bucket_name = bucket
        self.prefix = prefix.strip("/")
        self._client = client
        self._lock = threading.Lock()

    @property
    def bucket(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    # The ignore below: google.cloud is a namespace package mypy cannot resolve
                    from google.cloud import storage  # type: ignore[attr-defined]

                    self._client = storage.Client()
        return self._client.bucket(self.bucket_name)

    def _name(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, data: bytes, content_type: str) -> None:
        from google.api_core import exceptions

        try:
            self.bucket.blob(self._name(key)).upload_from_string(data, content_type=content_type)
        except exceptions.GoogleAPICallError as error:
            raise StorageError(f"gcs: could not write {key}: {error.message}") from error

    def get(self, key: str) -> bytes:
        from google.api_core import exceptions

        try:
            return bytes(self.bucket.blob(self._name(key)).download_as_bytes())
        except exceptions.NotFound:
            raise NotFoundError(f"no blob {key!r}") from None
        except exceptions.GoogleAPICallError as error:
            raise StorageError(f"gcs: could not read {key}: {error.message}") from error

    def exists(self, key: str) -> bool:
        return bool(self.bucket.blob(self._name(key)).exists())

    def delete(self, key: str) -> None:
        from google.api_core import exceptions

        try:
            self.bucket.blob(self._name(key)).delete()
        except exceptions.NotFound:
            return
        except exceptions.GoogleAPICallError as error:
            raise StorageError(f"gcs: could not delete {key}: {error.message}") from error

    def delete_under(self, folder: str) -> int:
        from google.api_core import exceptions

        prefix = self._name(folder) + "/"
        count = 0
        try:
            for blob in self.bucket.list_blobs(prefix=prefix):
                try:
                    blob.delete()
                except exceptions.NotFound:
                    continue
                count += 1
        except exceptions.GoogleAPICallError as error:
            raise StorageError(f"gcs: could not delete {folder}/: {error.message}") from error
        return count

    def signed_url(self, key: str, *, expires_s: int) -> str | None:
        name = self._name(key)
        emulator = os.environ.get("STORAGE_EMULATOR_HOST")
        if emulator:
            # The emulator cannot check signatures; its download URL serves the same bytes.
            host = emulator if emulator.startswith("http") else f"http://{emulator}"
            path = f"/download/storage/v1/b/{self.bucket_name}/o/{quote(name, safe='')}"
            return f"{host}{path}?alt=media"
        blob = self.bucket.blob(name)
        credentials: Any = getattr(self._client, "_credentials", None)
        if hasattr(credentials, "sign_bytes"):
            return str(
                blob.generate_signed_url(version="v4", expiration=timedelta(seconds=expires_s))
            )
        # On Cloud Functions the credentials hold no private key: sign through the IAM
        # signBlob API as the function's own service account (it needs Token Creator on itself).
        import google.auth.transport.requests

        credentials.refresh(google.auth.transport.requests.Request())
        return str(
            blob.generate_signed_url(
                version="v4",
                expiration=timedelta(seconds=expires_s),
                service_account_email=credentials.service_account_email,
                access_token=credentials.token,
            )
        )
