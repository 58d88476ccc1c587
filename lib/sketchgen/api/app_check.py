"""Firebase App Check: the request comes from our registered app, not a script.

With ``SKETCHGEN_APP_CHECK`` every authenticated request also carries an App Check token in
``X-Firebase-AppCheck``: a JWT signed RS256 by Firebase with a key from
:data:`APP_CHECK_JWKS_URL` (a JSON Web Key Set, fetched and kept like the ID token
certificates: for the response's ``max-age``, refetched at most once per interval for an
unknown ``kid``), issued by ``https://firebaseappcheck.googleapis.com/<project number>`` to
the audience ``projects/<project number>`` (or ``projects/<project id>``). The verifier is
built with the API, when the instance starts.
"""

from __future__ import annotations

import base64
from typing import Any

from google.auth import crypt

from sketchgen.api.auth import AuthError, _GoogleCertificates, _seconds, _split
from sketchgen.clock import SYSTEM_CLOCK
from sketchgen.errors import ConfigError
from sketchgen.ports import Clock

__all__ = ["APP_CHECK_HEADER", "APP_CHECK_JWKS_URL", "AppCheckError", "AppCheckVerifier"]

APP_CHECK_JWKS_URL = "https://firebaseappcheck.googleapis.com/v1/jwks"
APP_CHECK_HEADER = "X-Firebase-AppCheck"
_ISSUER = "https://firebaseappcheck.googleapis.com/"


class AppCheckError(AuthError):
    """No App Check token, or one that does not verify (HTTP 401 naming the header)."""

    code = "app_check_failed"
    field = APP_CHECK_HEADER


class _JsonWebKeys(_GoogleCertificates):
    def _parse(self, document: dict[str, Any]) -> dict[str, crypt.RSAVerifier]:
        """``{"keys": [{kty, kid, n, e, ...}]}``: the RSA keys, by ``kid``."""
        keys = document.get("keys")
        if not isinstance(keys, list):
            raise ValueError("not a JSON Web Key Set")
        verifiers = {}
        for key in keys:
            if not isinstance(key, dict) or key.get("kty") != "RSA":
                continue
            pem = _rsa_public_key_pem(_uint(key["n"]), _uint(key["e"]))
            # The ignore below: google-auth leaves from_string unannotated
            verifiers[str(key["kid"])] = crypt.RSAVerifier.from_string(pem)  # type: ignore[no-untyped-call]
        if not verifiers:
            raise ValueError("no RSA keys in the JSON Web Key Set")
        return verifiers


def _rsa_public_key_pem(modulus: int, exponent: int) -> str:
    """The key as PKCS#1 PEM (``RSA PUBLIC KEY``), which google-auth loads on either of its
    RSA backends: DER of ``SEQUENCE { INTEGER n, INTEGER e }``."""

    def length(n: int) -> bytes:
        if n < 0x80:
            return bytes([n])
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        return bytes([0x80 | len(raw)]) + raw

    def integer(value: int) -> bytes:
        raw = value.to_bytes(value.bit_length() // 8 + 1, "big")  # room for the sign bit
        return b"\x02" + length(len(raw)) + raw

    body = integer(modulus) + integer(exponent)
    der = base64.b64encode(b"\x30" + length(len(body)) + body).decode()
    lines = "\n".join(der[i : i + 64] for i in range(0, len(der), 64))
    return f"-----BEGIN RSA PUBLIC KEY-----\n{lines}\n-----END RSA PUBLIC KEY-----\n"


def _uint(value: object) -> int:
    if not isinstance(value, str) or len(value) > 1024:
        raise ValueError("not a base64url integer")
    return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")


class AppCheckVerifier:
    """Verifies App Check tokens for one Firebase project (its number and its id)."""

    def __init__(
        self,
        project_number: str,
        project_id: str | None = None,
        *,
        jwks_url: str = APP_CHECK_JWKS_URL,
        clock_skew_s: float = 10.0,
        refresh_interval_s: float = 5.0,
        fetch_timeout_s: float = 5.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if not project_number or not project_number.isdigit():
            raise ConfigError(
                "App Check needs the project number (digits)", field="SKETCHGEN_PROJECT_NUMBER"
            )
        self.issuer = _ISSUER + project_number
        self.audiences = frozenset(f"projects/{p}" for p in (project_number, project_id) if p)
        self.clock = clock
        self._clock_skew_s = clock_skew_s
        self._keys = _JsonWebKeys(
            jwks_url, refresh_interval_s=refresh_interval_s, timeout_s=fetch_timeout_s, clock=clock
        )

    def prefetch(self) -> None:
        """Fetch the keys now (at instance start), off the first request's clock. A failure
        is logged and the first request tries again."""
        self._keys.fetch()

    def verify(self, token: str | None) -> str:
        """The app id the token was issued to (``sub``), or :class:`AppCheckError`."""
        if not token:
            raise AppCheckError(f"missing {APP_CHECK_HEADER} token")
        try:
            header, claims, signed, signature = _split(token.strip())
        except AuthError:
            raise AppCheckError("App Check token is malformed") from None
        if header.get("alg") != "RS256" or header.get("typ") != "JWT":
            raise AppCheckError("App Check token must be a JWT signed with RS256")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AppCheckError("App Check token has no key id (kid)")
        verifier = self._keys.verifier(kid)
        if verifier is None:
            raise AppCheckError("App Check token is signed with an unknown key (kid)")
        if not verifier.verify(signed, signature):
            raise AppCheckError("App Check token signature is invalid")
        if claims.get("iss") != self.issuer:
            raise AppCheckError(f"App Check token issuer (iss) is not {self.issuer}")
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if not self.audiences.intersection(a for a in audiences if isinstance(a, str)):
            raise AppCheckError("App Check token is not for this project (aud)")
        now, skew = self.clock.now().timestamp(), self._clock_skew_s
        try:
            if _seconds(claims, "exp") < now - skew:
                raise AppCheckError("App Check token has expired")
            if _seconds(claims, "iat") > now + skew:
                raise AppCheckError("App Check token is issued in the future (iat)")
        except AppCheckError:
            raise
        except AuthError as error:
            raise AppCheckError(str(error).replace("ID token", "App Check token")) from None
        app = claims.get("sub")
        if not isinstance(app, str) or not app:
            raise AppCheckError("App Check token has no subject (sub)")
        return app
