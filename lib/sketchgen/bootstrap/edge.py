"""The HTTP edge from the settings: who may sign in and how (:func:`build_authenticator`,
:func:`check_deployment_safety`), App Check, the API with its limits, and the public values
the web page is given."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from sketchgen.errors import ConfigError
from sketchgen.settings import Settings, get_settings

if TYPE_CHECKING:
    from sketchgen.api.app_check import AppCheckVerifier
    from sketchgen.api.auth import Authenticator
    from sketchgen.api.http import Api
    from sketchgen.services import SketchService

# The one user of a local run: who owns the styles `sketchgen styles create` makes, whose
# styles `styles list/show` and `generate --style` see, and who the page of `sketchgen serve`
# signs in as (dev auth). One name, so a style made anywhere locally is visible everywhere.
LOCAL_OWNER = "local"


def check_deployment_safety(settings: Settings) -> None:
    """Refuse the local-only ways of signing in where the process runs in the cloud.

    Cloud Run and Cloud Functions (gen2) set ``K_SERVICE`` in every instance; there, dev auth
    (anyone can claim any uid) and the Auth emulator's unsigned tokens (anyone can mint one)
    would hand every job to whoever asks. Raises :class:`ConfigError` naming the variable.
    An empty ``FIREBASE_AUTH_EMULATOR_HOST`` is unset, as it is to :func:`build_authenticator`.
    The settings are read first, everywhere: a value that cannot work (a key the SDK cannot
    send) is refused here, once, at start-up, not on every sketch.
    """
    if not os.environ.get("K_SERVICE"):
        return
    where = "where K_SERVICE is set (Cloud Run, Cloud Functions)"
    if settings.auth == "dev":
        raise ConfigError(f"dev auth is refused {where}", field="SKETCHGEN_AUTH")
    if os.environ.get("FIREBASE_AUTH_EMULATOR_HOST"):
        raise ConfigError(
            f"the Auth emulator's unsigned tokens are refused {where}",
            field="FIREBASE_AUTH_EMULATOR_HOST",
        )


def build_authenticator(settings: Settings | None = None) -> Authenticator:
    from sketchgen.api.auth import DevAuthenticator, FirebaseAuthenticator

    settings = settings or get_settings()
    # Here too, not only at start-up: whatever builds an API gets the same refusal.
    check_deployment_safety(settings)
    if settings.auth == "dev":
        return DevAuthenticator()
    return FirebaseAuthenticator(
        settings.project or "",
        emulator_host=os.environ.get("FIREBASE_AUTH_EMULATOR_HOST") or None,
        require_verified_email=settings.require_verified_email,
    )


def build_app_check(settings: Settings) -> AppCheckVerifier | None:
    """Firebase App Check on every authenticated request (``SKETCHGEN_APP_CHECK``), for the
    project's number; None when off."""
    if not settings.app_check:
        return None
    from sketchgen.api.app_check import AppCheckVerifier

    return AppCheckVerifier(settings.project_number or "", settings.project)


def build_api(
    service_factory: Callable[[], SketchService],
    settings: Settings | None = None,
    routes: frozenset[str] | None = None,
    *,
    ready: Callable[[float], bool] | None = None,
) -> Api:
    """The API for ``routes`` over the service ``service_factory`` builds; ``ready`` is what
    its health check answers from (the instance's clients connected)."""
    from sketchgen.api.http import Api

    settings = settings or get_settings()
    authenticator = build_authenticator(settings)
    return Api(
        service_factory,
        lambda: authenticator,
        routes=routes or Api.ALL_ROUTES,
        events_base_url=settings.events_base_url,
        cors_origins=settings.cors_origins.split(","),
        max_body_bytes=settings.max_body_bytes,
        max_upload_bytes=settings.max_reference_bytes,
        signed_url_ttl_s=settings.signed_url_ttl_s,
        web_config=web_config(settings),
        connect_origins=_connect_origins(settings),
        user_streams=settings.user_streams,
        app_check=build_app_check(settings),
        ready=ready or _ready_now,
    )


def _ready_now(timeout_s: float) -> bool:
    """A process that connects nothing before it serves (the CLI's server, tests)."""
    return True


def _connect_origins(settings: Settings) -> list[str]:
    """Origins the page fetches from besides its own and Firebase sign-in's
    (:data:`sketchgen.api.routes_web.FIREBASE_AUTH_ORIGINS`): the stream function, where the
    blob store's signed URLs point, and the local emulators."""
    from urllib.parse import urlsplit

    urls = [
        settings.events_base_url,
        os.environ.get("STORAGE_EMULATOR_HOST"),
        settings.s3_endpoint_url,
        os.environ.get("FIREBASE_AUTH_EMULATOR_HOST"),
    ]
    if settings.blob_url.startswith("gs://"):
        urls.append("https://storage.googleapis.com")  # GcsBlobStore's v4 signed URLs
    elif settings.blob_url.startswith("s3://") and not settings.s3_endpoint_url:
        urls.append("https://*.amazonaws.com")  # boto3's presigned URLs (bucket, region hosts)
    origins = []
    for url in filter(None, urls):
        parts = urlsplit(url if "://" in url else f"http://{url}")
        origins.append(f"{parts.scheme}://{parts.netloc}")
    return origins


def web_config(settings: Settings) -> dict[str, object]:
    """What the web page needs to sign in; public values only (Firebase web config is public).
    With the Auth emulator (``make dev``) the page signs in against it, as the SDKs do."""
    if settings.auth == "dev":
        return {"auth": "dev", "devUid": LOCAL_OWNER}
    emulator = os.environ.get("FIREBASE_AUTH_EMULATOR_HOST")
    config: dict[str, object] = {
        "auth": "firebase",
        "firebase": {
            # The emulator takes any API key; the SDK only needs one to be there.
            "apiKey": settings.firebase_web_api_key or ("emulator" if emulator else None),
            "authDomain": f"{settings.project}.firebaseapp.com",
            "projectId": settings.project,
        },
    }
    if emulator:
        config["authEmulator"] = f"http://{emulator}"
    return config
