"""Who is calling: Firebase ID tokens in the cloud, ``Bearer dev:<uid>`` for local runs only."""

from __future__ import annotations

import re
import threading
import time
from typing import Any, Protocol

from sketchgen.errors import SketchgenError

__all__ = ["AuthError", "Authenticator", "DevAuthenticator", "FirebaseAuthenticator"]

_UID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_FIREBASE_CERTS = (
    "https://www.googleapis.com/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com"
)


class AuthError(SketchgenError):
    code = "unauthenticated"


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


class _CachingRequest:
    """google-auth transport that keeps Google's public keys for an hour.

    ``verify_token`` fetches the certificates on every call; caching them saves a round trip
    per request and keeps working through a brief outage of the certs endpoint.
    """

    def __init__(self, ttl_s: float = 3600.0) -> None:
        import google.auth.transport.requests

        self._inner = google.auth.transport.requests.Request()
        self._ttl_s = ttl_s
        self._cache: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def __call__(self, url: str, method: str = "GET", **kwargs: Any) -> Any:
        if method != "GET":
            return self._inner(url, method=method, **kwargs)
        with self._lock:
            hit = self._cache.get(url)
            if hit and time.monotonic() - hit[0] < self._ttl_s:
                return hit[1]
        response = self._inner(url, method=method, **kwargs)
        if response.status == 200:
            with self._lock:
                self._cache[url] = (time.monotonic(), response)
        return response


class FirebaseAuthenticator:
    """Verifies Firebase ID tokens against Google's public keys for ``project_id``."""

    def __init__(self, project_id: str) -> None:
        if not project_id:
            raise ValueError("Firebase auth needs the project id (SKETCHGEN_PROJECT)")
        self.project_id = project_id
        self._request: _CachingRequest | None = None

    def uid_for(self, authorization: str | None) -> str:
        from google.oauth2 import id_token

        token = bearer_token(authorization)
        if self._request is None:
            self._request = _CachingRequest()
        try:
            claims = id_token.verify_token(
                token,
                self._request,  # type: ignore[arg-type]
                audience=self.project_id,
                certs_url=_FIREBASE_CERTS,
                clock_skew_in_seconds=10,
            )
        except Exception:
            raise AuthError("invalid or expired ID token") from None
        issuer = f"https://securetoken.google.com/{self.project_id}"
        uid = claims.get("sub")
        if claims.get("iss") != issuer or not isinstance(uid, str) or not uid:
            raise AuthError("ID token is not for this project")
        return uid
