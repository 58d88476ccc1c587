"""The Firebase ID token verifier on its production path: RS256 tokens signed in the test,
certificates served over real HTTP from 127.0.0.1 the way Google's securetoken endpoint serves
them, and the Auth emulator's unsigned tokens only when the emulator is configured."""

from __future__ import annotations

import base64
import datetime
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt, jwt
from werkzeug.test import Client

from sketchgen import bootstrap
from sketchgen.adapters.local.blob_store import LocalBlobStore
from sketchgen.adapters.local.job_store import MemoryJobStore
from sketchgen.api.auth import AuthError, AuthUnavailableError, FirebaseAuthenticator
from sketchgen.api.http import Api
from sketchgen.bootstrap import assemble
from sketchgen.errors import ConfigError
from sketchgen.services import SketchService
from sketchgen.settings import get_settings
from sketchgen.styles import StyleRegistry
from sketchgen.testing.clock import FakeClock
from tests.helpers.fakes import CollectingQueue, FakeImageModel

PROJECT = "demo-sketchgen"
ISSUER = f"https://securetoken.google.com/{PROJECT}"
EMULATOR = "127.0.0.1:9099"
REFRESH_S = 5.0  # the verifier's refetch limit (its default), on the fake clock


@dataclass(frozen=True)
class Key:
    kid: str
    signer: crypt.RSASigner  # loaded once: cryptography validates an RSA key as it loads it
    cert_pem: str

    def sign(self, claims: dict[str, Any], *, kid: str | None = None) -> str:
        return jwt.encode(self.signer, claims, key_id=kid or self.kid).decode()


def _make_key(kid: str) -> Key:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "securetoken.system.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(private, hashes.SHA256())
    )
    return Key(
        kid=kid,
        signer=crypt.RSASigner(private, key_id=kid),
        cert_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
    )


@pytest.fixture(scope="module")
def keys() -> dict[str, Key]:
    """``current`` and ``next`` as Google rotates them; ``stranger`` signs forgeries."""
    return {name: _make_key(f"kid-{name}") for name in ("current", "next", "stranger")}


class CertServer:
    """Google's securetoken x509 endpoint in miniature: ``{kid: PEM}`` with a max-age."""

    def __init__(self) -> None:
        self.certs: dict[str, str] = {}
        self.max_age = 19000
        self.status = 200
        self.hits = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.hits += 1
                body = json.dumps(owner.certs).encode()
                self.send_response(owner.status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Cache-Control", f"public, max-age={owner.max_age}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._httpd.server_port}/robot/v1/metadata/x509/securetoken"

    def publish(self, *keys: Key) -> None:
        self.certs = {key.kid: key.cert_pem for key in keys}

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture
def server(keys: dict[str, Key]) -> Iterator[CertServer]:
    served = CertServer()
    served.publish(keys["current"])
    yield served
    served.close()


@pytest.fixture
def clock() -> FakeClock:
    """The verifier's time: now (the tokens' claims are minted on the wall clock), moved on
    by the test, never by sleeping."""
    return FakeClock(datetime.datetime.now(datetime.UTC))


@pytest.fixture
def verifier(server: CertServer, clock: FakeClock) -> FirebaseAuthenticator:
    return FirebaseAuthenticator(
        PROJECT, certs_url=server.url, refresh_interval_s=REFRESH_S, clock=clock
    )


@pytest.fixture
def emulated(server: CertServer, clock: FakeClock) -> FirebaseAuthenticator:
    return FirebaseAuthenticator(
        PROJECT,
        emulator_host=EMULATOR,
        certs_url=server.url,
        refresh_interval_s=REFRESH_S,
        clock=clock,
    )


def claims(**changes: Any) -> dict[str, Any]:
    """A Firebase ID token's claims as the Auth service issues them; ``None`` drops one."""
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": PROJECT,
        "auth_time": now - 120,
        "user_id": "alice",
        "sub": "alice",
        "iat": now - 60,
        "exp": now + 3540,
        "email": "alice@example.com",
        "email_verified": True,
        "firebase": {
            "identities": {"email": ["alice@example.com"]},
            "sign_in_provider": "password",
        },
    }
    base.update(changes)
    return {name: value for name, value in base.items() if value is not None}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(payload: dict[str, Any], signature: bytes = b"") -> str:
    """As the Firebase Auth emulator mints them: ``alg: none`` and an empty signature."""
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(payload).encode())}.{_b64(signature)}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _forged_payload(keys: dict[str, Key]) -> str:
    """A genuine token with its claims swapped after signing (alice's signature, bob's uid)."""
    header, _, signature = keys["current"].sign(claims()).split(".")
    return f"{header}.{_b64(json.dumps(claims(sub='bob')).encode())}.{signature}"


def _hs256(keys: dict[str, Key]) -> str:
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "kid-current"}).encode())
    return f"{header}.{_b64(json.dumps(claims()).encode())}.{_b64(b'mac')}"


NOW = int(time.time())
# Far enough ahead to stay in the future however long the suite runs before a case does.
LATER = NOW + 365 * 86400
REFUSED: dict[str, tuple[Callable[[dict[str, Key]], str], str]] = {
    "other key": (
        lambda k: k["stranger"].sign(claims(), kid="kid-current"),
        "ID token signature is invalid",
    ),
    "claims changed after signing": (_forged_payload, "ID token signature is invalid"),
    "wrong aud": (
        lambda k: k["current"].sign(claims(aud="another-project")),
        f"ID token audience (aud) is not {PROJECT}",
    ),
    "wrong iss": (
        lambda k: k["current"].sign(claims(iss="https://securetoken.google.com/another-project")),
        f"ID token issuer (iss) is not {ISSUER}",
    ),
    "expired": (
        lambda k: k["current"].sign(claims(iat=NOW - 7200, exp=NOW - 3600)),
        "ID token has expired",
    ),
    "no exp": (lambda k: k["current"].sign(claims(exp=None)), "ID token has no exp"),
    "exp not a number": (lambda k: k["current"].sign(claims(exp="soon")), "ID token has no exp"),
    "exp beyond float": (lambda k: k["current"].sign(claims(exp=10**400)), "ID token has no exp"),
    "iat in the future": (
        lambda k: k["current"].sign(claims(iat=LATER, exp=LATER + 3600)),
        "ID token is issued in the future (iat)",
    ),
    "missing auth_time": (
        lambda k: k["current"].sign(claims(auth_time=None)),
        "ID token has no auth_time",
    ),
    "auth_time in the future": (
        lambda k: k["current"].sign(claims(auth_time=LATER)),
        "ID token sign-in time (auth_time) is in the future",
    ),
    "empty sub": (lambda k: k["current"].sign(claims(sub="")), "ID token has no subject (sub)"),
    "sub not a string": (
        lambda k: k["current"].sign(claims(sub=42)),
        "ID token has no subject (sub)",
    ),
    "sub too long": (
        lambda k: k["current"].sign(claims(sub="a" * 129)),
        "ID token subject (sub) is longer than 128 characters",
    ),
    "alg none without the emulator": (lambda k: unsigned(claims()), "ID token is not signed"),
    "alg HS256": (_hs256, "ID token must be signed with RS256"),
    "unknown kid": (
        lambda k: k["stranger"].sign(claims()),
        "ID token is signed with an unknown key (kid)",
    ),
    "not a JWT": (lambda k: "not-a-jwt", "ID token is malformed"),
    "bad base64": (lambda k: "e30.e30.a+b/", "ID token is malformed"),
}


@pytest.fixture
def world(tmp_path: Path) -> SketchService:
    return assemble(
        jobs=MemoryJobStore(),
        blobs=LocalBlobStore(tmp_path / "blobs"),
        queue=CollectingQueue(),
        model=FakeImageModel(),
        styles=StyleRegistry(),
    )


def client(service: SketchService, authenticator: FirebaseAuthenticator) -> Client:
    return Client(Api(lambda: service, lambda: authenticator, web_config={"auth": "firebase"}))


JOB = {"brief": "playful golf mascot", "style_id": "loose-ink-mascot", "num_images": 2}


def assert_401(response: Any, message: str) -> None:
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.get_json() == {
        "error": {"code": "unauthenticated", "message": message, "field": None}
    }


# -- the signed path ----------------------------------------------------------------------


def test_a_valid_token_gives_its_uid_and_the_certificates_are_fetched_once(
    verifier: FirebaseAuthenticator, server: CertServer, keys: dict[str, Key]
) -> None:
    token = keys["current"].sign(claims())
    assert verifier.uid_for(f"Bearer {token}") == "alice"
    assert verifier.uid_for(f"Bearer {keys['current'].sign(claims(sub='bob'))}") == "bob"
    assert server.hits == 1


def test_a_valid_token_through_the_api(
    verifier: FirebaseAuthenticator, world: SketchService, keys: dict[str, Key]
) -> None:
    api = client(world, verifier)
    alice = bearer(keys["current"].sign(claims()))
    created = api.post("/v1/jobs", json=JOB, headers=alice)
    assert created.status_code == 202, created.get_json()
    job_id = created.get_json()["job_id"]
    assert api.get(f"/v1/jobs/{job_id}", headers=alice).status_code == 200
    # The uid is the token's sub: bob's valid token does not reach alice's job.
    bob = bearer(keys["current"].sign(claims(sub="bob", user_id="bob")))
    assert api.get(f"/v1/jobs/{job_id}", headers=bob).status_code == 404


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_bad_token_is_refused_with_one_clear_message(
    case: str,
    verifier: FirebaseAuthenticator,
    world: SketchService,
    keys: dict[str, Key],
) -> None:
    make, message = REFUSED[case]
    token = make(keys)
    with pytest.raises(AuthError) as refused:
        verifier.uid_for(f"Bearer {token}")
    assert str(refused.value) == message
    response = client(world, verifier).post("/v1/jobs", json=JOB, headers=bearer(token))
    assert_401(response, message)
    assert world.jobs.list_jobs(limit=10) == []


def test_a_missing_or_non_bearer_header_is_refused(
    verifier: FirebaseAuthenticator, world: SketchService
) -> None:
    api = client(world, verifier)
    assert_401(api.post("/v1/jobs", json=JOB), "missing Authorization: Bearer token")
    response = api.post("/v1/jobs", json=JOB, headers={"Authorization": "Basic YTpi"})
    assert_401(response, "Authorization must be 'Bearer <token>'")


def test_small_clock_skew_is_tolerated(
    verifier: FirebaseAuthenticator, keys: dict[str, Key], clock: FakeClock
) -> None:
    now = int(clock.time())
    late = keys["current"].sign(claims(iat=now - 3600, exp=now - 3))
    early = keys["current"].sign(claims(iat=now + 3, auth_time=now + 3))
    assert verifier.uid_for(f"Bearer {late}") == "alice"
    assert verifier.uid_for(f"Bearer {early}") == "alice"
    clock.advance(10)  # the default skew is 10 s: 13 s past its exp is too late
    with pytest.raises(AuthError, match="expired"):
        verifier.uid_for(f"Bearer {late}")


# -- the certificate cache ----------------------------------------------------------------


def test_a_rotated_key_verifies_after_one_refetch(
    verifier: FirebaseAuthenticator, server: CertServer, keys: dict[str, Key], clock: FakeClock
) -> None:
    assert verifier.uid_for(f"Bearer {keys['current'].sign(claims())}") == "alice"
    assert server.hits == 1
    clock.advance(REFRESH_S)  # rotations are hours apart; the refetch limit is seconds
    server.publish(keys["current"], keys["next"])
    rotated = keys["next"].sign(claims())
    assert verifier.uid_for(f"Bearer {rotated}") == "alice"
    assert server.hits == 2
    assert verifier.uid_for(f"Bearer {rotated}") == "alice"
    assert verifier.uid_for(f"Bearer {keys['current'].sign(claims())}") == "alice"
    assert server.hits == 2


def test_made_up_key_ids_cause_at_most_one_refetch_per_interval(
    verifier: FirebaseAuthenticator, server: CertServer, keys: dict[str, Key], clock: FakeClock
) -> None:
    garbage = [keys["stranger"].sign(claims(), kid=f"made-up-{n}") for n in range(100)]
    assert verifier.uid_for(f"Bearer {keys['current'].sign(claims())}") == "alice"
    for token in garbage[:50]:
        with pytest.raises(AuthError, match="unknown key"):
            verifier.uid_for(f"Bearer {token}")
    assert server.hits == 1  # all inside the interval after the first fetch
    clock.advance(REFRESH_S - 0.1)
    with pytest.raises(AuthError, match="unknown key"):
        verifier.uid_for(f"Bearer {garbage[0]}")
    assert server.hits == 1  # still inside it
    clock.advance(0.1)
    for token in garbage[50:]:
        with pytest.raises(AuthError, match="unknown key"):
            verifier.uid_for(f"Bearer {token}")
    assert server.hits == 2


def test_certificates_are_refetched_after_their_max_age(
    verifier: FirebaseAuthenticator, server: CertServer, keys: dict[str, Key], clock: FakeClock
) -> None:
    server.max_age = 0
    token = f"Bearer {keys['current'].sign(claims())}"
    assert verifier.uid_for(token) == "alice"
    assert verifier.uid_for(token) == "alice"  # stale, but inside the refetch interval
    assert server.hits == 1
    clock.advance(REFRESH_S)
    assert verifier.uid_for(token) == "alice"
    assert server.hits == 2


def test_fresh_certificates_are_used_until_their_max_age_without_a_fetch(
    verifier: FirebaseAuthenticator, server: CertServer, keys: dict[str, Key], clock: FakeClock
) -> None:
    token = f"Bearer {keys['current'].sign(claims(exp=int(clock.time()) + 30000))}"
    assert verifier.uid_for(token) == "alice"
    clock.advance(server.max_age - 1)
    assert verifier.uid_for(token) == "alice"
    assert server.hits == 1  # still fresh: no fetch on a known key
    clock.advance(1)
    assert verifier.uid_for(token) == "alice"
    assert server.hits == 2


def test_an_outage_of_the_certificate_endpoint_keeps_the_certificates_we_have(
    verifier: FirebaseAuthenticator, server: CertServer, keys: dict[str, Key], clock: FakeClock
) -> None:
    server.max_age = 0
    token = f"Bearer {keys['current'].sign(claims())}"
    assert verifier.uid_for(token) == "alice"
    server.status = 500
    clock.advance(REFRESH_S)
    assert verifier.uid_for(token) == "alice"
    assert server.hits == 2  # it did try


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_no_reachable_certificates_is_a_503_not_a_401(
    world: SketchService, keys: dict[str, Key]
) -> None:
    down = FirebaseAuthenticator(PROJECT, certs_url=f"http://127.0.0.1:{_closed_port()}/certs")
    token = keys["current"].sign(claims())
    with pytest.raises(AuthUnavailableError):
        down.uid_for(f"Bearer {token}")
    response = client(world, down).post("/v1/jobs", json=JOB, headers=bearer(token))
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "unavailable"


# -- the Auth emulator's unsigned tokens --------------------------------------------------


def test_the_emulators_unsigned_token_is_accepted_with_the_emulator_host(
    emulated: FirebaseAuthenticator, server: CertServer, world: SketchService
) -> None:
    token = unsigned(claims())
    assert emulated.uid_for(f"Bearer {token}") == "alice"
    assert client(world, emulated).post("/v1/jobs", json=JOB, headers=bearer(token)).status_code
    assert server.hits == 0  # no keys are needed for a token that has no signature


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (claims(iat=NOW - 7200, exp=NOW - 3600), "ID token has expired"),
        (claims(aud="another-project"), f"ID token audience (aud) is not {PROJECT}"),
        (claims(iss="https://securetoken.google.com/x"), f"ID token issuer (iss) is not {ISSUER}"),
        (claims(iat=LATER, exp=LATER + 3600), "ID token is issued in the future (iat)"),
        (claims(auth_time=None), "ID token has no auth_time"),
        (claims(sub=""), "ID token has no subject (sub)"),
    ],
)
def test_unsigned_tokens_still_get_every_claim_check(
    payload: dict[str, Any], message: str, emulated: FirebaseAuthenticator, world: SketchService
) -> None:
    token = unsigned(payload)
    with pytest.raises(AuthError) as refused:
        emulated.uid_for(f"Bearer {token}")
    assert str(refused.value) == message
    assert_401(client(world, emulated).post("/v1/jobs", json=JOB, headers=bearer(token)), message)


def test_alg_none_with_a_signature_is_refused_even_with_the_emulator(
    emulated: FirebaseAuthenticator,
) -> None:
    with pytest.raises(AuthError, match="alg none but carries a signature"):
        emulated.uid_for(f"Bearer {unsigned(claims(), signature=b'sig')}")


def test_signed_tokens_are_still_verified_with_the_emulator_host(
    emulated: FirebaseAuthenticator, keys: dict[str, Key]
) -> None:
    assert emulated.uid_for(f"Bearer {keys['current'].sign(claims())}") == "alice"
    forged = keys["stranger"].sign(claims(), kid="kid-current")
    with pytest.raises(AuthError, match="signature is invalid"):
        emulated.uid_for(f"Bearer {forged}")


# -- settings: bootstrap is the one reader ------------------------------------------------


@pytest.fixture
def firebase_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for name in ("K_SERVICE", "FIREBASE_AUTH_EMULATOR_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SKETCHGEN_AUTH", "firebase")
    monkeypatch.setenv("SKETCHGEN_PROJECT", PROJECT)
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def test_bootstrap_accepts_unsigned_tokens_only_with_firebase_auth_emulator_host(
    firebase_env: pytest.MonkeyPatch,
) -> None:
    token = f"Bearer {unsigned(claims())}"
    with pytest.raises(AuthError, match="not signed"):
        bootstrap.build_authenticator().uid_for(token)
    firebase_env.setenv("FIREBASE_AUTH_EMULATOR_HOST", EMULATOR)
    assert bootstrap.build_authenticator().uid_for(token) == "alice"
    firebase_env.setenv("FIREBASE_AUTH_EMULATOR_HOST", "")  # empty is unset, as for the SDKs
    with pytest.raises(AuthError, match="not signed"):
        bootstrap.build_authenticator().uid_for(token)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"SKETCHGEN_AUTH": "dev"}, "SKETCHGEN_AUTH"),
        ({"FIREBASE_AUTH_EMULATOR_HOST": EMULATOR}, "FIREBASE_AUTH_EMULATOR_HOST"),
    ],
)
def test_the_cloud_refuses_local_sign_in(
    env: dict[str, str], variable: str, firebase_env: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        firebase_env.setenv(name, value)
    bootstrap.check_deployment_safety(bootstrap.read_settings())  # not in the cloud: fine
    bootstrap.build_authenticator()
    firebase_env.setenv("K_SERVICE", "generate")
    get_settings.cache_clear()
    with pytest.raises(ConfigError) as refused:
        bootstrap.check_deployment_safety(bootstrap.read_settings())
    assert refused.value.field == variable
    with pytest.raises(ConfigError):
        bootstrap.build_authenticator()


def test_the_cloud_accepts_real_sign_in(firebase_env: pytest.MonkeyPatch) -> None:
    firebase_env.setenv("K_SERVICE", "generate")
    bootstrap.check_deployment_safety(bootstrap.read_settings())
    assert isinstance(bootstrap.build_authenticator(), FirebaseAuthenticator)
