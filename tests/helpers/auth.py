"""Firebase ID tokens for tests: as the Auth emulator issues them, or from the emulator itself."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx

__all__ = ["bearer", "sign_up", "unsigned_token"]

DEV_PROJECT = "sketchgen-dev"  # dev.topology.DevTopology's default project


def unsigned_token(uid: str, project: str = DEV_PROJECT, *, lifetime_s: int = 3600) -> str:
    """An ID token for ``uid`` shaped as the Auth emulator issues them (``alg: none``): what
    the Firestore emulator's rules and the functions accept while the emulator is configured."""

    def b64(data: dict[str, Any]) -> str:
        raw = json.dumps(data, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    now = int(time.time())
    claims = {
        "iss": f"https://securetoken.google.com/{project}",
        "aud": project,
        "auth_time": now,
        "user_id": uid,
        "sub": uid,
        "iat": now,
        "exp": now + lifetime_s,
        "email": f"{uid}@example.com",
        "email_verified": True,
        "firebase": {"sign_in_provider": "password", "identities": {}},
    }
    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."


def bearer(uid: str, project: str = DEV_PROJECT) -> dict[str, str]:
    return {"Authorization": f"Bearer {unsigned_token(uid, project)}"}


def sign_up(auth_host: str, email: str, password: str = "a-long-test-password") -> tuple[str, str]:
    """A real account on the Auth emulator: ``(uid, ID token)`` from its REST API."""
    url = f"http://{auth_host}/identitytoolkit.googleapis.com/v1/accounts:signUp?key=emulator"
    body = {"email": email, "password": password, "returnSecureToken": True}
    answer = httpx.post(url, json=body, timeout=10).json()
    return str(answer["localId"]), str(answer["idToken"])
