"""V4 signed URLs, the production-only path of GcsBlobStore, made by google-auth's real signing
code with a service-account key generated here, and checked the way Cloud Storage checks them:
the canonical request rebuilt from the URL, its signature verified with the key's public half.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from google.cloud import storage
from google.oauth2 import service_account

from sketchgen.adapters.gcp.gcs_blob_store import GcsBlobStore

EMAIL = "sketchgen-stream@sketchgen-test.iam.gserviceaccount.com"
BUCKET = "sketchgen-test-outputs"
KEY = "jobs/20261125_120000-abcdef/sketch_0.png"


@pytest.fixture(scope="module")
def private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def store(private_key: rsa.RSAPrivateKey, monkeypatch: pytest.MonkeyPatch) -> GcsBlobStore:
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)  # the cloud path, not the emulator's
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "sketchgen-test",
        "private_key_id": "test-key-1",
        "private_key": pem,
        "client_email": EMAIL,
        "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    credentials = service_account.Credentials.from_service_account_info(
        json.loads(json.dumps(info))
    )
    client = storage.Client(project="sketchgen-test", credentials=credentials)
    return GcsBlobStore(BUCKET, client=client)


def _string_to_sign(url: str, method: str = "GET") -> tuple[str, bytes]:
    """Cloud Storage's V4 canonical request and string to sign, rebuilt from the URL alone."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    signature = query.pop("X-Goog-Signature")
    canonical_query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(query.items())
    )
    canonical_request = "\n".join(
        [
            method,
            parts.path,
            canonical_query,
            f"host:{parts.netloc}\n",
            query["X-Goog-SignedHeaders"],
            "UNSIGNED-PAYLOAD",
        ]
    )
    scope = query["X-Goog-Credential"].split("/", 1)[1]
    to_sign = "\n".join(
        [
            query["X-Goog-Algorithm"],
            query["X-Goog-Date"],
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    return signature, to_sign.encode()


def test_a_signed_url_names_one_object_allows_get_only_and_verifies(
    store: GcsBlobStore, private_key: rsa.RSAPrivateKey
) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    url = store.signed_url(KEY, expires_s=900)
    assert url is not None
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    assert parts.scheme == "https" and parts.netloc == "storage.googleapis.com"
    assert parts.path == f"/{BUCKET}/{quote(KEY)}"
    assert query["X-Goog-Algorithm"] == "GOOG4-RSA-SHA256"
    assert query["X-Goog-Expires"] == "900"
    assert query["X-Goog-SignedHeaders"] == "host"
    credential = query["X-Goog-Credential"].split("/")
    assert credential[0] == EMAIL and credential[-2:] == ["storage", "goog4_request"]
    signed_at = datetime.strptime(query["X-Goog-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert abs((signed_at - before).total_seconds()) < 60

    signature, to_sign = _string_to_sign(url)
    public = private_key.public_key()
    public.verify(bytes.fromhex(signature), to_sign, padding.PKCS1v15(), hashes.SHA256())

    # The signature covers the method and the object: another verb or object does not verify.
    for forged in (
        _string_to_sign(url, method="PUT")[1],
        _string_to_sign(url.replace("sketch_0", "sketch_1"))[1],
    ):
        with pytest.raises(InvalidSignature):
            public.verify(bytes.fromhex(signature), forged, padding.PKCS1v15(), hashes.SHA256())
