"""Sign-in behind settings (issue 23, item 3): verified emails only, and Firebase App Check
tokens on every authenticated request — RS256 tokens signed in the test, the JSON Web Key Set
served over real HTTP from 127.0.0.1 as firebaseappcheck.googleapis.com serves it."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import crypt, jwt
from werkzeug.test import Client

from sketchgen.api.app_check import AppCheckError, AppCheckVerifier
from sketchgen.api.auth import DevAuthenticator, EmailNotVerifiedError, FirebaseAuthenticator
from sketchgen.api.http import Api
from sketchgen.bootstrap import build_api, build_app_check, build_service
from sketchgen.errors import ConfigError
from sketchgen.settings import Settings
from tests.helpers.auth import unsigned_token

NUMBER, PROJECT = "123456789012", "demo-sketchgen"
ISSUER = f"https://firebaseappcheck.googleapis.com/{NUMBER}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class AppKey:
    def __init__(self, kid: str) -> None:
        self.kid = kid
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.signer = crypt.RSASigner(self.private, key_id=kid)

    def jwk(self) -> dict[str, str]:
        numbers = self.private.public_key().public_numbers()
        size = (numbers.n.bit_length() + 7) // 8
        return {
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": _b64(numbers.n.to_bytes(size, "big")),
            "e": _b64(numbers.e.to_bytes(3, "big")),
        }

    def sign(self, **changes: Any) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "sub": "1:123456789012:web:abcdef",
            "aud": [f"projects/{NUMBER}", f"projects/{PROJECT}"],
            "iat": now - 30,
            "exp": now + 3600,
        }
        claims.update(changes)
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(self.signer, claims, header={"typ": "JWT"}).decode()


class JwksServer:
    """firebaseappcheck.googleapis.com/v1/jwks in miniature, counting fetches."""

    def __init__(self, *keys: AppKey) -> None:
        self.document = {"keys": [k.jwk() for k in keys]}
        self.hits = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.hits += 1
                body = json.dumps(owner.document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Cache-Control", "public, max-age=21600")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._httpd.server_port}/v1/jwks"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture(scope="module")
def key() -> AppKey:
    return AppKey("app-check-kid")


@pytest.fixture
def server(key: AppKey) -> Iterator[JwksServer]:
    served = JwksServer(key)
    yield served
    served.close()


@pytest.fixture
def verifier(server: JwksServer) -> AppCheckVerifier:
    return AppCheckVerifier(NUMBER, PROJECT, jwks_url=server.url, refresh_interval_s=0.2)


def test_a_genuine_token_is_accepted_and_the_keys_are_fetched_once(
    verifier: AppCheckVerifier, server: JwksServer, key: AppKey
) -> None:
    assert verifier.verify(key.sign()) == "1:123456789012:web:abcdef"
    assert verifier.verify(key.sign(aud=[f"projects/{PROJECT}"]))  # the id is an audience too
    for _ in range(5):
        verifier.verify(key.sign())
    assert server.hits == 1  # kept for max-age


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (lambda k: None, "missing X-Firebase-AppCheck"),
        (lambda k: "not-a-jwt", "malformed"),
        (lambda k: k.sign(iss="https://firebaseappcheck.googleapis.com/999"), "issuer"),
        (lambda k: k.sign(aud=["projects/another"]), "not for this project"),
        (lambda k: k.sign(exp=int(time.time()) - 3600), "expired"),
        (lambda k: k.sign(iat=int(time.time()) + 3600), "future"),
        (lambda k: k.sign(exp=None), "no exp"),
        (lambda k: k.sign(sub=None), "no subject"),
        (lambda k: AppKey("app-check-kid").sign(), "signature is invalid"),
        (lambda k: AppKey("unknown-kid").sign(), "unknown key"),
        (lambda k: _swap_claims(k.sign()), "signature is invalid"),
        (lambda k: _alg_none(), "RS256"),
    ],
)
def test_anything_else_is_refused_naming_the_header(
    verifier: AppCheckVerifier, key: AppKey, token: Any, message: str
) -> None:
    with pytest.raises(AppCheckError, match=message) as refused:
        verifier.verify(token(key))
    assert refused.value.http_status == 401 and refused.value.field == "X-Firebase-AppCheck"


def _swap_claims(token: str) -> str:
    header, _, signature = token.split(".")
    forged = {"iss": ISSUER, "sub": "x", "aud": [f"projects/{NUMBER}"], "exp": 2**40, "iat": 1}
    return f"{header}.{_b64(json.dumps(forged).encode())}.{signature}"


def _alg_none() -> str:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    body = {"iss": ISSUER, "sub": "x", "aud": [f"projects/{NUMBER}"], "exp": 2**40, "iat": 1}
    return f"{header}.{_b64(json.dumps(body).encode())}."


def test_a_made_up_kid_does_not_turn_every_request_into_a_fetch(
    verifier: AppCheckVerifier, server: JwksServer
) -> None:
    stranger = AppKey("made-up")
    for _ in range(20):
        with pytest.raises(AppCheckError):
            verifier.verify(stranger.sign())
    assert server.hits <= 2


def test_the_api_refuses_without_an_app_check_token_before_anything_else(
    tmp_path: Path, verifier: AppCheckVerifier, key: AppKey
) -> None:
    settings = Settings(job_store="memory://", blob_url=f"file://{tmp_path}", offline=True)
    service = build_service(settings)
    client = Client(Api(lambda: service, DevAuthenticator, app_check=verifier))
    alice = {"Authorization": "Bearer dev:alice"}
    refused = client.get("/v1/usage", headers=alice)
    assert refused.status_code == 401
    assert refused.get_json()["error"]["field"] == "X-Firebase-AppCheck"
    forged = client.get("/v1/usage", headers={**alice, "X-Firebase-AppCheck": _alg_none()})
    assert forged.status_code == 401
    ok = client.get("/v1/usage", headers={**alice, "X-Firebase-AppCheck": key.sign()})
    assert ok.status_code == 200
    assert client.get("/healthz").status_code == 200  # unauthenticated routes stay open
    preflight = client.options("/v1/jobs", headers={"Origin": "https://app.example"})
    assert preflight.status_code == 204


def test_app_check_is_built_from_settings_and_needs_the_project_number() -> None:
    assert build_app_check(Settings(app_check=False)) is None
    with pytest.raises(ConfigError) as missing:
        build_app_check(Settings(app_check=True, SKETCHGEN_PROJECT=PROJECT))
    assert missing.value.field == "SKETCHGEN_PROJECT_NUMBER"
    built = build_app_check(
        Settings(app_check=True, SKETCHGEN_PROJECT=PROJECT, project_number=NUMBER)
    )
    assert built is not None and built.audiences == {f"projects/{NUMBER}", f"projects/{PROJECT}"}


# -- verified emails ------------------------------------------------------------------------------


def test_only_verified_emails_sign_in_when_required(tmp_path: Path) -> None:
    strict = FirebaseAuthenticator(
        PROJECT, emulator_host="127.0.0.1:9099", require_verified_email=True
    )
    lax = FirebaseAuthenticator(PROJECT, emulator_host="127.0.0.1:9099")
    verified = f"Bearer {unsigned_token('alice', PROJECT)}"
    assert strict.uid_for(verified) == "alice"

    def token(**changes: Any) -> str:
        raw = unsigned_token("bob", PROJECT)
        header, payload, _ = raw.split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        claims.update(changes)
        claims = {k: v for k, v in claims.items() if v is not None}
        return f"Bearer {header}.{_b64(json.dumps(claims).encode())}."

    for unverified in (token(email_verified=False), token(email_verified=None, email=None)):
        with pytest.raises(EmailNotVerifiedError) as refused:
            strict.uid_for(unverified)
        assert refused.value.http_status == 403 and refused.value.field == "email"
        assert lax.uid_for(unverified) == "bob"  # the setting is off by default
    with pytest.raises(EmailNotVerifiedError):
        strict.uid_for(token(email_verified="true"))  # a string is not the boolean


def test_an_unverified_user_gets_a_403_naming_the_email_over_http(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIREBASE_AUTH_EMULATOR_HOST", "127.0.0.1:9099")
    monkeypatch.delenv("K_SERVICE", raising=False)
    settings = Settings(
        job_store="memory://",
        blob_url=f"file://{tmp_path}",
        offline=True,
        auth="firebase",
        SKETCHGEN_PROJECT=PROJECT,
        require_verified_email=True,
    )
    service = build_service(settings)
    client = Client(build_api(lambda: service, settings))
    raw = unsigned_token("bob", PROJECT)
    header, payload, _ = raw.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["email_verified"] = False
    answer = client.get(
        "/v1/usage",
        headers={"Authorization": f"Bearer {header}.{_b64(json.dumps(claims).encode())}."},
    )
    assert answer.status_code == 403
    assert answer.get_json()["error"]["code"] == "email_not_verified"
    assert answer.get_json()["error"]["field"] == "email"
    ok = client.get(
        "/v1/usage", headers={"Authorization": f"Bearer {unsigned_token('alice', PROJECT)}"}
    )
    assert ok.status_code == 200


def test_the_keys_can_be_fetched_when_the_instance_starts(
    verifier: AppCheckVerifier, server: JwksServer, key: AppKey
) -> None:
    verifier.prefetch()
    assert server.hits == 1
    verifier.verify(key.sign())
    assert server.hits == 1  # the first request found them fetched
