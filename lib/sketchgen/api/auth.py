"""Who is calling: Firebase ID tokens in the cloud, ``Bearer dev:<uid>`` for local runs only.

:class:`FirebaseAuthenticator` is one verifier with two key sources. Every token gets the same
claim checks (issuer, audience, ``exp``, ``iat``, ``auth_time``, ``sub``); the signature is an
RS256 one checked against Google's x509 certificates by ``kid``, except that when the Firebase
Auth emulator is configured (``emulator_host``, from ``FIREBASE_AUTH_EMULATOR_HOST`` as the
Firebase Admin SDKs read it) the emulator's unsigned tokens (``alg: none``) are accepted too.
"""

from __future__ import annotations

import base64
import json
import math
import re
import threading
import urllib.request
from typing import Any, Protocol

from google.auth import crypt

from sketchgen import bounded_json
from sketchgen.clock import SYSTEM_CLOCK
from sketchgen.errors import AuthenticationError, ConfigError, SketchgenError
from sketchgen.logs import get_logger
from sketchgen.ports import Clock

__all__ = [
    "FIREBASE_CERTS_URL",
    "AuthError",
    "AuthUnavailableError",
    "Authenticator",
    "DevAuthenticator",
    "EmailNotVerifiedError",
    "FirebaseAuthenticator",
]

log = get_logger(__name__)

_UID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
FIREBASE_CERTS_URL = (
    "https://www.googleapis.com/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com"
)
_MAX_AGE = re.compile(r"max-age=(\d+)")
_SEGMENT = re.compile(r"[A-Za-z0-9_-]*")


class AuthError(AuthenticationError):
    """The caller is not signed in: no token, or one that does not verify (HTTP 401)."""


class EmailNotVerifiedError(AuthError):
    """Signed in, but the deployment only lets in verified emails (HTTP 403: signing in again
    does not help; verifying the address does)."""

    code = "email_not_verified"
    http_status = 403
    field = "email"


class AuthUnavailableError(SketchgenError):
    """Google's signing keys could not be fetched, so no token can be checked (HTTP 503).

    Not an :class:`AuthError`: the caller's token may be fine, and a 401 would make clients
    sign the user out over an outage that is ours.
    """

    code = "unavailable"
    http_status = 503


def bearer_token(header: str | None) -> str:
    if not header:
        raise AuthError("missing Authorization: Bearer token")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("Authorization must be 'Bearer <token>'")
    return token.strip()


class Authenticator(Protocol):
    def uid_for(self, authorization: str | None) -> str:
        """The caller's user id, or :class:`AuthError`."""
        ...


class DevAuthenticator:
    """Accepts ``Bearer dev:<uid>``. Only ever wired when ``SKETCHGEN_AUTH=dev``."""

    def uid_for(self, authorization: str | None) -> str:
        token = bearer_token(authorization)
        prefix, _, uid = token.partition(":")
        if prefix != "dev" or not _UID.fullmatch(uid):
            raise AuthError("dev auth expects 'Bearer dev:<uid>'")
        return uid


class _GoogleCertificates:
    """The x509 certificates Firebase signs ID tokens with, by key id, fetched over HTTP.

    Kept for the response's ``max-age`` (Google publishes a new key hours before it signs with
    it). A ``kid`` we do not hold means a rotation we have not seen yet, so it triggers a
    refetch — but at most one per ``refresh_interval_s``: tokens with made-up key ids must not
    turn every request into a fetch. After a failed refetch the certificates we have stay in
    use, so a brief outage of the endpoint does not stop sign-in. Freshness and the refetch
    limit are judged on ``clock``'s monotonic time (tests advance a fake one).
    """

    def __init__(
        self, url: str, *, refresh_interval_s: float, timeout_s: float, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        if not url.startswith(("https://", "http://")):
            raise ValueError(f"certificates URL must be http(s), not {url!r}")
        self.url = url
        self.clock = clock
        self._refresh_interval_s = refresh_interval_s
        self._timeout_s = timeout_s
        self._verifiers: dict[str, crypt.RSAVerifier] = {}
        self._expires_at = -math.inf
        self._attempted_at = -math.inf
        # One fetch at a time: requests arriving during a fetch wait for its answer rather than
        # each starting their own.
        self._lock = threading.Lock()

    def verifier(self, kid: str) -> crypt.RSAVerifier | None:
        # Fast path without the lock: a known key while the set is fresh needs no fetch, and
        # must not wait behind one that a made-up kid started.
        verifiers = self._verifiers
        if kid in verifiers and self.clock.monotonic() < self._expires_at:
            return verifiers[kid]
        with self._lock:
            now = self.clock.monotonic()
            stale = now >= self._expires_at or kid not in self._verifiers
            if stale and now - self._attempted_at >= self._refresh_interval_s:
                self._attempted_at = now
                self._refresh(now)
            if not self._verifiers:
                raise AuthUnavailableError("cannot fetch the ID token signing keys; retry")
            return self._verifiers.get(kid)

    def fetch(self) -> None:
        """Fetch the certificates now unless they are fresh (at instance start)."""
        with self._lock:
            now = self.clock.monotonic()
            if now >= self._expires_at:
                self._attempted_at = now
                self._refresh(now)

    def _refresh(self, now: float) -> None:
        try:
            # The scheme is checked in __init__: https in the cloud, http for a test's server.
            with urllib.request.urlopen(self.url, timeout=self._timeout_s) as response:  # noqa: S310
                body = response.read()
                cache_control = response.headers.get("Cache-Control", "")
            document = json.loads(body)
            if not isinstance(document, dict) or not document:
                raise ValueError("not a JSON object of certificates")
            verifiers = self._parse(document)
        except (OSError, ValueError) as error:  # urllib's errors are OSErrors
            log.warning("could not fetch the ID token certificates from %s: %s", self.url, error)
            return
        max_age = _MAX_AGE.search(cache_control)
        self._verifiers = verifiers
        self._expires_at = now + (int(max_age.group(1)) if max_age else 3600)

    def _parse(self, document: dict[str, Any]) -> dict[str, crypt.RSAVerifier]:
        """Google's securetoken document: ``{kid: x509 PEM}``."""
        return {  # from_string parses x509 PEM; google-auth leaves it unannotated
            str(kid): crypt.RSAVerifier.from_string(str(pem))  # type: ignore[no-untyped-call]
            for kid, pem in document.items()
        }


class FirebaseAuthenticator:
    """Verifies Firebase ID tokens for ``project_id``; the uid is the token's ``sub``.

    ``emulator_host`` (the value of ``FIREBASE_AUTH_EMULATOR_HOST``; only bootstrap reads it)
    also accepts the Auth emulator's unsigned tokens, with every claim check still applied.
    ``certs_url`` is where the signing certificates are fetched from (tests serve their own).
    ``clock``: what ``exp``/``iat`` and the certificates' freshness are judged on.
    """

    def __init__(
        self,
        project_id: str,
        *,
        emulator_host: str | None = None,
        certs_url: str = FIREBASE_CERTS_URL,
        clock_skew_s: float = 10.0,
        refresh_interval_s: float = 5.0,
        fetch_timeout_s: float = 5.0,
        require_verified_email: bool = False,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if not project_id:
            raise ConfigError("Firebase auth needs the project id", field="SKETCHGEN_PROJECT")
        self.project_id = project_id
        # SKETCHGEN_REQUIRE_VERIFIED_EMAIL: open sign-up must not mean an account per
        # made-up address (issue 23).
        self.require_verified_email = require_verified_email
        self.emulator_host = emulator_host or None
        self.issuer = f"https://securetoken.google.com/{project_id}"
        self.clock = clock
        self._clock_skew_s = clock_skew_s
        self._certs = _GoogleCertificates(
            certs_url, refresh_interval_s=refresh_interval_s, timeout_s=fetch_timeout_s, clock=clock
        )
        if self.emulator_host:
            log.warning(
                "FIREBASE_AUTH_EMULATOR_HOST=%s: accepting the Auth emulator's unsigned ID tokens",
                self.emulator_host,
            )

    def fetch_keys(self) -> None:
        """Fetch the signing keys before the first token needs them (at instance start). Not
        with the Auth emulator: its tokens are unsigned, and make dev has no Google to ask."""
        if not self.emulator_host:
            self._certs.fetch()

    def uid_for(self, authorization: str | None) -> str:
        header, claims, signed, signature = _split(bearer_token(authorization))
        alg = header.get("alg")
        if alg == "none":
            if not self.emulator_host:
                raise AuthError("ID token is not signed")
            if signature:
                raise AuthError("ID token says alg none but carries a signature")
        elif alg == "RS256":
            kid = header.get("kid")
            if not isinstance(kid, str) or not kid:
                raise AuthError("ID token has no key id (kid)")
            verifier = self._certs.verifier(kid)
            if verifier is None:
                raise AuthError("ID token is signed with an unknown key (kid)")
            if not verifier.verify(signed, signature):
                raise AuthError("ID token signature is invalid")
        else:
            raise AuthError("ID token must be signed with RS256")
        return self._uid(claims)

    def _uid(self, claims: dict[str, Any]) -> str:
        if claims.get("iss") != self.issuer:
            raise AuthError(f"ID token issuer (iss) is not {self.issuer}")
        if claims.get("aud") != self.project_id:
            raise AuthError(f"ID token audience (aud) is not {self.project_id}")
        now, skew = self.clock.now().timestamp(), self._clock_skew_s
        if _seconds(claims, "exp") < now - skew:
            raise AuthError("ID token has expired")
        if _seconds(claims, "iat") > now + skew:
            raise AuthError("ID token is issued in the future (iat)")
        if _seconds(claims, "auth_time") > now + skew:
            raise AuthError("ID token sign-in time (auth_time) is in the future")
        uid = claims.get("sub")
        if not isinstance(uid, str) or not uid:
            raise AuthError("ID token has no subject (sub)")
        if len(uid) > 128:
            raise AuthError("ID token subject (sub) is longer than 128 characters")
        if self.require_verified_email and claims.get("email_verified") is not True:
            raise EmailNotVerifiedError("verify your email address, then sign in again")
        return uid


def _seconds(claims: dict[str, Any], name: str) -> float:
    value = claims.get(name)
    # bool is an int to Python, never a time to a JWT; JSON integers have no size limit, so
    # 1e400 as an int must not reach float() (OverflowError, a 500) unchecked.
    if isinstance(value, int | float) and not isinstance(value, bool) and abs(value) < 1e12:
        return float(value)
    raise AuthError(f"ID token has no {name}")


def _split(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """Header, claims, the signed part and the signature of a compact JWS; nothing verified."""
    parts = token.split(".")
    if len(parts) != 3:
        raise AuthError("ID token is malformed")
    try:
        header = bounded_json.loads(_b64decode(parts[0]))
        claims = bounded_json.loads(_b64decode(parts[1]))
        signature = _b64decode(parts[2])
    except bounded_json.JsonTooDeepError as error:
        raise AuthError(f"ID token is malformed: {error}") from None
    except ValueError:  # binascii.Error, JSONDecodeError and UnicodeDecodeError included
        raise AuthError("ID token is malformed") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise AuthError("ID token is malformed")
    return header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), signature


def _b64decode(segment: str) -> bytes:
    # base64's own decoder skips characters it does not know; a JWT segment is strictly
    # unpadded base64url, so anything else is refused before decoding.
    if not _SEGMENT.fullmatch(segment):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
