"""``S3BlobStore``: job outputs in any S3-compatible bucket, read through presigned URLs."""

from __future__ import annotations

import threading
from typing import Any

from sketchgen.adapters.keys import check_key
from sketchgen.errors import NotFoundError, StorageError

__all__ = ["S3BlobStore"]


class S3BlobStore:
    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        client: Any | None = None,
        endpoint_url: str | None = None,
        region: str | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._client = client
        self._endpoint_url = endpoint_url
        self._region = region
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    import boto3

                    self._client = boto3.client(
                        "s3", endpoint_url=self._endpoint_url, region_name=self._region
                    )
        return self._client

    def _name(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, data: bytes, content_type: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.put_object(
                Bucket=self.bucket, Key=self._name(key), Body=data, ContentType=content_type
            )
        except (BotoCoreError, ClientError) as error:
            raise StorageError(f"s3: could not write {key}: {error}") from error

    def get(self, key: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return bytes(
                self.client.get_object(Bucket=self.bucket, Key=self._name(key))["Body"].read()
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
                raise NotFoundError(f"no blob {key!r}") from None
            raise StorageError(f"s3: could not read {key}: {error}") from error
        except BotoCoreError as error:
            raise StorageError(f"s3: could not read {key}: {error}") from error

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._name(key))
        except ClientError:
            return False
        return True

    def delete_prefix(self, prefix: str) -> int:
        from botocore.exceptions import BotoCoreError, ClientError

        name = self._name(prefix.rstrip("/")) + "/"
        count = 0
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=name
            )
            for page in pages:
                keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
                if keys:  # at most 1000 a page: delete_objects' own limit
                    self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys})
                    count += len(keys)
        except (BotoCoreError, ClientError) as error:
            raise StorageError(f"s3: could not delete {prefix}/: {error}") from error
        return count

    def signed_url(self, key: str, *, expires_s: int) -> str | None:
        return str(
            self.client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": self._name(key)},
                ExpiresIn=expires_s,
            )
        )
