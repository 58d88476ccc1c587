"""Settings from the environment (``SKETCHGEN_*``, ``GEMINI_*``) and ``.env``."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sketchgen.errors import ConfigError, first_problem
from sketchgen.image_models import DEFAULT_MODEL, check_model
from sketchgen.pixel_limit import MAX_IMAGE_PIXELS

__all__ = ["DEFAULT_MODEL", "Settings", "get_settings"]

_KEY = re.compile(r"[\x21-\x7e]+")  # what an HTTP header (x-goog-api-key) can carry


class Settings(BaseSettings):
    # An empty variable is an unset one: `GEMINI_API_KEY=` in a .env template, or an unset
    # secret, must not count as a key (nor an empty URL as a URL).
    model_config = SettingsConfigDict(
        env_prefix="SKETCHGEN_", env_file=".env", extra="ignore", frozen=True, env_ignore_empty=True
    )

    gemini_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("GEMINI_API_KEY", "GOOGLE_API_KEY")
    )
    gemini_model: str = Field(
        default=DEFAULT_MODEL, validation_alias=AliasChoices("GEMINI_MODEL", "SKETCHGEN_MODEL")
    )
    gemini_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("GOOGLE_GEMINI_BASE_URL")
    )
    offline: bool = False
    model_timeout_s: float = 120.0
    max_attempts: int = 4
    styles_dir: Path | None = None
    output_dir: Path = Path("generated_outputs")
    blob_url: str = "file://generated_outputs"
    s3_endpoint_url: str | None = None  # an S3-compatible server's URL, for s3:// blob URLs
    auth: Literal["firebase", "dev"] = "firebase"
    project: str | None = Field(
        default=None, validation_alias=AliasChoices("SKETCHGEN_PROJECT", "GOOGLE_CLOUD_PROJECT")
    )
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"  # json: one object a line (Cloud Logging)
    # Traces and metrics (docs/decisions/0030): "cloud" (Cloud Trace, Cloud Monitoring),
    # "file://DIR" (OTLP JSON lines under DIR/traces, metrics under DIR/metrics), "" (none).
    telemetry: str = ""

    # The service (functions/ and `sketchgen serve`).
    job_store: str = (
        "sqlite:///generated_outputs/jobs.sqlite3"  # memory:// | sqlite:///… | firestore
    )
    firestore_database: str = "(default)"
    # Connections the process's Firestore client spreads its calls over: one carries about 100
    # open listeners, so the stream function (one listener per job it streams) needs more.
    firestore_channels: int = Field(default=1, ge=1, le=64)
    sketch_topic: str | None = None  # full or short Pub/Sub topic; unset = in-process queue
    regenerate_topic: str | None = None
    events_base_url: str | None = None  # where the stream function answers, if not this host
    cors_origins: str = ""  # comma-separated web app origins
    lease_s: float = 300.0  # renewed every third of it while held (ADR 0069); deployed: 60 s
    lease_wait_s: float = 330.0  # how long a duplicate delivery waits out another's lease
    max_deliveries: int = 5  # transient failures before a sketch is marked failed
    job_retention_days: int = 30
    signed_url_ttl_s: int = 900
    max_body_bytes: int = 16 * 1024
    # Admission: the model's requests-per-minute quota, shared by every worker (unset: none).
    model_rpm: float | None = Field(default=None, gt=0)
    quota_horizon_s: float = Field(default=10.0, gt=0)  # how far ahead model slots are handed out
    quota_wait_s: float = Field(default=60.0, gt=0)  # then the sketch goes back to the queue
    # A delivery's time around its model calls (claim, plan, record, upload; infra/functions.yaml
    # delivery:): with the waits and the calls, how long the worker may hold a sketch (ADR 0073).
    worker_overhead_s: float = Field(default=60.0, gt=0)
    firebase_web_api_key: str | None = None  # public by design: identifies the Firebase app
    # Spend control, per user (docs/decisions/0012); an account document may override the
    # first two. ``user_streams`` is per instance of the stream function.
    spend_control: bool = True
    user_daily_images: int = Field(default=200, ge=0)  # images a UTC day, reserved at submit
    user_active_jobs: int = Field(default=3, ge=0)  # jobs queued or running at once
    user_streams: int = Field(default=5, ge=1)  # open event streams per instance
    # Above every user: the deployment's USD a UTC day for every paid call admitted, across
    # all instances (docs/decisions/0021); unset: no ceiling.
    deployment_daily_usd: float | None = Field(default=None, gt=0)
    # Sign-in: only Firebase users whose email is verified (the ID token's email_verified).
    require_verified_email: bool = False
    # Firebase App Check: every authenticated request also carries X-Firebase-AppCheck, a
    # token for this project (its number: App Check tokens are issued to it).
    app_check: bool = False
    project_number: str | None = None
    # User styles (issue 16): kept where the jobs are (job_store), embedded with Gemini when a
    # key is configured (else the offline hashing embedding).
    max_styles_per_user: int = Field(default=50, ge=1)
    max_references_per_style: int = Field(default=200, ge=1)
    max_reference_uploads_per_day: int = Field(default=200, ge=1)  # deleted ones included
    max_reference_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    # At most the process's decoding limit (sketchgen.pixel_limit): Pillow refuses past it.
    max_reference_pixels: int = Field(default=MAX_IMAGE_PIXELS, ge=1, le=MAX_IMAGE_PIXELS)
    embedding_model: str = "gemini-embedding-001"
    # With a key, an upload without a description gets one written by this model (off: false).
    describe_references: bool = True
    describe_model: str = "gemini-2.5-flash"

    @field_validator("gemini_model")
    @classmethod
    def _known_model(cls, name: str) -> str:
        """A typo in GEMINI_MODEL is refused at start-up, naming the models there are,
        rather than by every sketch (or silently, by the offline model)."""
        try:
            check_model(name)
        except ConfigError as error:
            raise ValueError(str(error)) from None
        return name

    @field_validator("gemini_api_key")
    @classmethod
    def _usable_key(cls, key: SecretStr | None) -> SecretStr | None:
        """Refused here, once, rather than as a ValueError from the SDK on every sketch. A
        newline around a key (a secret saved from a file) is trimmed; one inside is not."""
        if key is None:
            return None
        value = key.get_secret_value().strip()
        if not value:
            return None
        if not _KEY.fullmatch(value):
            raise ValueError(
                "not a usable API key: it has spaces, control or non-ASCII characters "
                "(the key itself is not shown)"
            )
        return SecretStr(value)

    @property
    def use_offline_model(self) -> bool:
        return self.offline or self.gemini_api_key is None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings; a bad value is one :class:`ConfigError` naming its variable."""
    try:
        return Settings()
    except ValidationError as error:
        field, message = first_problem(error)
        name = field.split(".")[0] or "settings"
        variable = name if name.isupper() else f"SKETCHGEN_{name.upper()}"
        raise ConfigError(message, field=variable) from None
