"""A local run's settings: the service ``sketchgen serve`` and the CLI's service commands
run in a folder (:func:`local_settings`), that folder's style catalog
(:func:`local_style_catalog`) and where its references are files (:func:`local_blob_folder`),
and what a local server says it runs (:func:`describe_local_service`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sketchgen.bootstrap.adapters import build_style_registry
from sketchgen.bootstrap.service import build_style_catalog
from sketchgen.errors import InputError
from sketchgen.settings import Settings, get_settings

if TYPE_CHECKING:
    from sketchgen.services.styles import StyleService


def local_settings(data_dir: Path, offline: bool) -> Settings:
    """The environment's settings with local adapters in ``data_dir`` (SQLite jobs, a blob
    folder) and dev auth, where the environment chose none of them."""
    settings = get_settings()
    data = data_dir.resolve()
    local = {
        "job_store": f"sqlite:///{data / 'jobs.sqlite3'}",
        "blob_url": f"file://{data / 'blobs'}",
        "auth": "dev",
    }
    update: dict[str, object] = {
        name: value for name, value in local.items() if name not in settings.model_fields_set
    }
    if offline:
        update["offline"] = True
    if (offline or settings.use_offline_model) and "spend_control" not in settings.model_fields_set:
        # The local plan: the offline model bills nobody, so the paid plans' limits (images
        # a day, no pro or 4K on free) guard nothing here; SKETCHGEN_SPEND_CONTROL=true
        # brings them back to try them (docs/decisions/0037).
        update["spend_control"] = False
    return settings.model_copy(update=update)


def local_style_catalog(settings: Settings) -> StyleService | None:
    """The style catalog of a local run's stores, where the styles
    :data:`~sketchgen.bootstrap.LOCAL_OWNER` made live; None if none was ever made there."""
    from sketchgen.adapters.blob_url import blob_store_from_url

    if settings.job_store.startswith("sqlite:///"):
        jobs = Path(settings.job_store.removeprefix("sqlite:///"))
        if not jobs.with_name(jobs.stem + ".styles.sqlite3").is_file():
            return None
    registry = build_style_registry(settings)
    blobs = blob_store_from_url(settings.blob_url, s3_endpoint_url=settings.s3_endpoint_url)
    return build_style_catalog(settings, styles=registry, blobs=blobs)


def local_blob_folder(settings: Settings) -> Path:
    """The folder a local run's blobs are files in: the library reads a style's references
    from files. Refused (naming ``SKETCHGEN_BLOB_URL``) for blobs in a bucket."""
    blob_url = settings.blob_url
    if not blob_url.startswith("file://"):
        raise InputError(
            "a style of your own needs its references in a local folder on the command line "
            "(SKETCHGEN_BLOB_URL=file://...); use the API for styles in a bucket",
            field="SKETCHGEN_BLOB_URL",
        )
    return Path(blob_url.removeprefix("file://"))


def describe_local_service(settings: Settings) -> tuple[str, str]:
    """How a local server's clients sign in, and which model draws its sketches."""
    auth = "Bearer dev:<uid>" if settings.auth == "dev" else "Firebase ID tokens"
    model = "the offline sketch model" if settings.use_offline_model else settings.gemini_model
    return auth, model
