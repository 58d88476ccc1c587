"""The composition root: the one place that reads settings and builds clients and adapters.

Nothing is built at import time of this module. Each function's ``main.py`` calls :func:`warm`
as functions-framework imports it, so what every request needs is built before the instance
serves; requests then call :func:`service` / :func:`api` and get those instances. The gRPC
clients (Firestore, Pub/Sub) are connected in the process that serves, once gunicorn has forked
it (:func:`ready`, which the health check answers from), not by the first request.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sketchgen.errors import ConfigError, InputError, SketchgenError
from sketchgen.generate.base import ImageModelAdapter
from sketchgen.settings import Settings, get_settings

if TYPE_CHECKING:
    from sketchgen.api.app_check import AppCheckVerifier
    from sketchgen.api.auth import Authenticator
    from sketchgen.api.http import Api
    from sketchgen.ceiling import DeploymentCeiling
    from sketchgen.generate.generator import ImageGenerator
    from sketchgen.ports import (
        BlobStore,
        FavouriteStore,
        ImageModel,
        JobStore,
        ReferenceIndex,
        StyleStore,
        TaskQueue,
        TextEmbedder,
    )
    from sketchgen.quota import QuotaGate
    from sketchgen.services import SketchService
    from sketchgen.services.spending import SpendControl
    from sketchgen.services.styles import StyleService
    from sketchgen.spend import UsageLedger
    from sketchgen.styles import StyleRegistry

__all__ = [
    "LOCAL_OWNER",
    "api",
    "build_api",
    "build_app_check",
    "build_authenticator",
    "build_deployment_ceiling",
    "build_embedder",
    "build_generator",
    "build_image_model",
    "build_service",
    "build_spend_control",
    "build_style_catalog",
    "build_style_registry",
    "build_usage_ledger",
    "check_deployment_safety",
    "configure",
    "current_settings",
    "ready",
    "reset",
    "service",
    "start_instance",
    "start_telemetry",
    "warm",
]

# The one user of a local run: who owns the styles `sketchgen styles create` makes, whose
# styles `styles list/show` and `generate --style` see, and who the page of `sketchgen serve`
# signs in as (dev auth). One name, so a style made anywhere locally is visible everywhere.
LOCAL_OWNER = "local"

_lock = threading.Lock()
_settings: Settings | None = None  # set by configure(); else the environment's
_service: SketchService | None = None
_apis: dict[frozenset[str], Api] = {}
_startup: _Startup | None = None  # set by warm(): what this instance connects before serving
_fork_hooked = False
_CONNECT_TIMEOUT_S = 10.0  # per client; past it the first requests connect, as they could


def build_image_model(
    settings: Settings | None = None, *, offline: bool | None = None
) -> ImageModelAdapter:
    """Nano Banana when a Gemini key is configured, else the offline sketch model."""
    settings = settings or get_settings()
    if offline if offline is not None else settings.use_offline_model:
        from sketchgen.generate.offline import OfflineSketchAdapter

        return OfflineSketchAdapter()
    from sketchgen.adapters.gemini import NanoBananaAdapter

    assert settings.gemini_api_key is not None  # use_offline_model is False only with a key
    return NanoBananaAdapter(
        api_key=settings.gemini_api_key.get_secret_value(),
        base_url=settings.gemini_base_url,
        timeout_s=settings.model_timeout_s,
    )


def build_generator(
    settings: Settings | None = None, *, offline: bool | None = None
) -> ImageGenerator:
    """The library's generator on the configured model and retry policy: what the CLI and
    ``sketchgen.make_sketches(...)`` run."""
    from sketchgen.generate.generator import ImageGenerator
    from sketchgen.generate.retry import RetryPolicy

    settings = settings or get_settings()
    return ImageGenerator(
        build_image_model(settings, offline=offline),
        retry=RetryPolicy(max_attempts=settings.max_attempts),
    )


def build_style_registry(settings: Settings | None = None) -> StyleRegistry:
    """``SKETCHGEN_STYLES_DIR`` when set, else the styles shipped with the package."""
    from sketchgen.styles import PACKAGED_STYLES_DIR, StyleRegistry

    settings = settings or get_settings()
    return StyleRegistry(settings.styles_dir or PACKAGED_STYLES_DIR)


def _topic_path(settings: Settings, topic: str) -> str:
    if topic.startswith("projects/"):
        return topic
    if not settings.project:
        raise InputError("a short topic name needs SKETCHGEN_PROJECT", field="SKETCHGEN_PROJECT")
    return f"projects/{settings.project}/topics/{topic}"


def build_job_store(settings: Settings) -> JobStore:
    url = settings.job_store
    if url == "memory://":
        from sketchgen.adapters.local.job_store import MemoryJobStore

        return MemoryJobStore()
    if url.startswith("sqlite:///"):
        from sketchgen.adapters.local.job_store import SqliteJobStore

        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteJobStore(path)
    if url == "firestore":
        from sketchgen.adapters.gcp.firestore_job_store import FirestoreJobStore

        return FirestoreJobStore(project=settings.project, database=settings.firestore_database)
    raise InputError(
        f"unknown job store {url!r}",
        field="SKETCHGEN_JOB_STORE",
        allowed=("memory://", "sqlite:///path", "firestore"),
    )


def build_favourite_store(settings: Settings) -> FavouriteStore:
    """Beside the jobs: the same SQLite file (its own table), or Firestore's users/{uid}."""
    url = settings.job_store
    if url.startswith("sqlite:///"):
        from sketchgen.adapters.local.favourite_store import SqliteFavouriteStore

        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteFavouriteStore(path)
    if url == "firestore":
        from sketchgen.adapters.gcp.firestore_favourite_store import FirestoreFavouriteStore

        return FirestoreFavouriteStore(
            project=settings.project, database=settings.firestore_database
        )
    from sketchgen.adapters.local.favourite_store import MemoryFavouriteStore

    return MemoryFavouriteStore()


def build_quota_gate(settings: Settings) -> QuotaGate | None:
    """The model's quota, shared where the jobs are: Firestore across instances, else memory."""
    if settings.model_rpm is None:
        return None
    from sketchgen.quota import QuotaPolicy

    policy = QuotaPolicy(rpm=settings.model_rpm, horizon_s=settings.quota_horizon_s)
    if settings.job_store == "firestore":
        from sketchgen.adapters.gcp.firestore_quota_gate import FirestoreQuotaGate

        return FirestoreQuotaGate(
            policy, project=settings.project, database=settings.firestore_database
        )
    from sketchgen.adapters.local.quota_gate import MemoryQuotaGate

    return MemoryQuotaGate(policy)


def build_usage_ledger(settings: Settings) -> UsageLedger:
    """Per-user usage and accounts where the jobs are: Firestore, the SQLite file, memory."""
    url = settings.job_store
    if url == "firestore":
        from sketchgen.adapters.gcp.firestore_usage_ledger import FirestoreUsageLedger

        return FirestoreUsageLedger(project=settings.project, database=settings.firestore_database)
    if url.startswith("sqlite:///"):
        from sketchgen.adapters.local.usage_ledger import SqliteUsageLedger

        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteUsageLedger(path)
    from sketchgen.adapters.local.usage_ledger import MemoryUsageLedger

    return MemoryUsageLedger()


def build_deployment_ceiling(settings: Settings) -> DeploymentCeiling | None:
    """The deployment's daily USD (docs/decisions/0021), where the jobs are: Firestore shard
    documents, the SQLite file, memory. None when no ceiling is set."""
    ceiling = settings.deployment_daily_usd
    if ceiling is None:
        return None
    url = settings.job_store
    if url == "firestore":
        from sketchgen.adapters.gcp.firestore_deployment_ceiling import (
            FirestoreDeploymentCeiling,
        )

        return FirestoreDeploymentCeiling(
            ceiling, project=settings.project, database=settings.firestore_database
        )
    from sketchgen.adapters.local.deployment_ceiling import (
        MemoryDeploymentCeiling,
        SqliteDeploymentCeiling,
    )

    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteDeploymentCeiling(path, ceiling)
    return MemoryDeploymentCeiling(ceiling)


def build_spend_control(
    settings: Settings,
    ledger: UsageLedger | None = None,
    *,
    ceiling: DeploymentCeiling | None = None,
) -> SpendControl:
    """Per-user plans and limits (docs/decisions/0012) over the configured ledger, under the
    deployment's ceiling (docs/decisions/0021)."""
    from sketchgen.services.spending import SpendControl, SpendLimits

    limits = SpendLimits(
        daily_images=settings.user_daily_images, active_jobs=settings.user_active_jobs
    )
    return SpendControl(
        ledger or build_usage_ledger(settings),
        limits,
        ceiling=ceiling or build_deployment_ceiling(settings),
    )


def build_style_store(settings: Settings) -> tuple[StyleStore, ReferenceIndex]:
    """User styles live where the jobs do: memory, the job store's SQLite file, or Firestore
    (whose vector search is then the index; numpy otherwise)."""
    url = settings.job_store
    if url == "firestore":
        from sketchgen.adapters.gcp.firestore_style_store import (
            FirestoreReferenceIndex,
            FirestoreStyleStore,
        )

        project, database = settings.project, settings.firestore_database
        return (
            FirestoreStyleStore(project=project, database=database),
            FirestoreReferenceIndex(project=project, database=database),
        )
    from sketchgen.adapters.local.numpy_index import NumpyReferenceIndex
    from sketchgen.adapters.local.style_store import MemoryStyleStore, SqliteStyleStore

    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        store: StyleStore = SqliteStyleStore(path.with_name(path.stem + ".styles.sqlite3"))
    else:
        store = MemoryStyleStore()
    return store, NumpyReferenceIndex(store)


def build_embedder(settings: Settings) -> TextEmbedder:
    """Gemini embeddings when a key is configured (and not ``offline``), else the hashing
    embedding; both at :data:`~sketchgen.references.EMBEDDING_DIMENSIONS` (the size the
    Firestore vector index is declared with)."""
    from sketchgen.references import EMBEDDING_DIMENSIONS, HashingTextEmbedding

    if settings.use_offline_model:
        return HashingTextEmbedding(EMBEDDING_DIMENSIONS)
    from sketchgen.adapters.gemini import GeminiTextEmbedder

    assert settings.gemini_api_key is not None
    return GeminiTextEmbedder(
        settings.gemini_api_key.get_secret_value(),
        model=settings.embedding_model,
        dimensions=EMBEDDING_DIMENSIONS,
        base_url=settings.gemini_base_url,
    )


def build_style_catalog(
    settings: Settings,
    *,
    styles: StyleRegistry,
    blobs: BlobStore,
    store: StyleStore | None = None,
    index: ReferenceIndex | None = None,
    embedder: TextEmbedder | None = None,
    spend: SpendControl | None = None,
) -> StyleService:
    from sketchgen.adapters.local.numpy_index import NumpyReferenceIndex
    from sketchgen.services.styles import StyleLimits, StyleService

    if store is None:
        store, built_index = build_style_store(settings)
        index = index or built_index
    describer = None
    if settings.describe_references and not settings.use_offline_model:
        from sketchgen.adapters.gemini import GeminiImageDescriber

        assert settings.gemini_api_key is not None
        describer = GeminiImageDescriber(
            settings.gemini_api_key.get_secret_value(),
            model=settings.describe_model,
            base_url=settings.gemini_base_url,
        )
    return StyleService(
        builtins=styles,
        store=store,
        index=index or NumpyReferenceIndex(store),
        embedder=embedder or build_embedder(settings),
        blobs=blobs,
        describer=describer,
        spend=spend,
        limits=StyleLimits(
            max_styles_per_user=settings.max_styles_per_user,
            max_references_per_style=settings.max_references_per_style,
            max_reference_uploads_per_day=settings.max_reference_uploads_per_day,
            max_upload_bytes=settings.max_reference_bytes,
            max_upload_pixels=settings.max_reference_pixels,
        ),
    )


def build_service(
    settings: Settings | None = None,
    *,
    jobs: JobStore | None = None,
    blobs: BlobStore | None = None,
    queue: TaskQueue | None = None,
    model: ImageModel | None = None,
    styles: StyleRegistry | None = None,
    gate: QuotaGate | None = None,
    ledger: UsageLedger | None = None,
    style_store: StyleStore | None = None,
    embedder: TextEmbedder | None = None,
    ceiling: DeploymentCeiling | None = None,
    favourites: FavouriteStore | None = None,
) -> SketchService:
    """The service's capabilities from ``settings``; any part handed in is used instead of
    building one (tests, the CLI, a caller with its own store), as cosmicpython's ``bootstrap``
    does."""
    from sketchgen.adapters.blob_url import blob_store_from_url
    from sketchgen.adapters.local.favourite_store import MemoryFavouriteStore
    from sketchgen.adapters.local.usage_ledger import MemoryUsageLedger
    from sketchgen.adapters.traced import traced
    from sketchgen.services import ServiceConfig, SketchService

    settings = settings or get_settings()
    # A job store handed in (tests, the CLI) gets a ledger of its own in memory: the
    # configured one would count those jobs in the configured store.
    if ledger is None and jobs is not None:
        ledger = MemoryUsageLedger()
        if ceiling is None and settings.deployment_daily_usd is not None:
            from sketchgen.adapters.local.deployment_ceiling import MemoryDeploymentCeiling

            ceiling = MemoryDeploymentCeiling(settings.deployment_daily_usd)
    inline = None
    if queue is None and settings.sketch_topic:
        from sketchgen.adapters.gcp.pubsub_task_queue import PubSubTaskQueue

        queue = PubSubTaskQueue(_topic_path(settings, settings.sketch_topic))
    elif queue is None:
        from sketchgen.adapters.local.task_queue import InlineTaskQueue
        from sketchgen.timing import queue_delivery_attempts

        # As the subscription: the worker counts its own draws (max_deliveries); the queue
        # lets refusals (no model slot in time) come back more often than that.
        queue = inline = InlineTaskQueue(
            max_deliveries=queue_delivery_attempts(settings.max_deliveries)
        )
    # Every capability reaches the model, the bucket and the quota gate through spans and
    # metrics (sketchgen.adapters.traced; no-ops until telemetry is installed).
    traced_model, blobs, traced_gate = traced(
        model=model or build_image_model(settings),
        blobs=blobs or blob_store_from_url(settings.blob_url),
        gate=gate or build_quota_gate(settings),
    )
    styles = styles or build_style_registry(settings)
    spend = (
        build_spend_control(settings, ledger, ceiling=ceiling) if settings.spend_control else None
    )
    built = SketchService.from_ports(
        jobs=jobs or build_job_store(settings),
        blobs=blobs,
        queue=queue,
        model=traced_model,
        styles=styles,
        catalog=build_style_catalog(
            settings,
            styles=styles,
            blobs=blobs,
            store=style_store,
            embedder=embedder,
            spend=spend,
        ),
        config=ServiceConfig(
            lease_s=settings.lease_s,
            lease_wait_s=settings.lease_wait_s,
            max_deliveries=settings.max_deliveries,
            retention=timedelta(days=settings.job_retention_days),
            quota_wait_s=settings.quota_wait_s,
            default_model=settings.gemini_model,
        ),
        gate=traced_gate,
        spend=spend,
        # A job store handed in keeps its stars in memory beside it, as its ledger does.
        favourites=favourites
        or (MemoryFavouriteStore() if jobs is not None else build_favourite_store(settings)),
    )
    if inline is not None:
        # The in-process queue delivers straight to this process's worker.
        inline.bind(built.worker.run_sketch)
    return built


def check_deployment_safety(settings: Settings | None = None) -> None:
    """Refuse the local-only ways of signing in where the process runs in the cloud.

    Cloud Run and Cloud Functions (gen2) set ``K_SERVICE`` in every instance; there, dev auth
    (anyone can claim any uid) and the Auth emulator's unsigned tokens (anyone can mint one)
    would hand every job to whoever asks. Raises :class:`ConfigError` naming the variable.
    An empty ``FIREBASE_AUTH_EMULATOR_HOST`` is unset, as it is to :func:`build_authenticator`.
    The settings are read first, everywhere: a value that cannot work (a key the SDK cannot
    send) is refused here, once, at start-up, not on every sketch.
    """
    import os

    settings = settings or current_settings()
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


def start_instance(routes: frozenset[str] | None = None, *, model: bool = False) -> None:
    """What each function's ``main.py`` does as functions-framework imports it: refuse what
    cannot work (:func:`check_deployment_safety`: dev or emulator sign-in in the cloud, a
    setting that cannot work), then build what every request needs (:func:`warm`). A refusal
    is one log line naming the variable and a non-zero exit, so the instance never serves (a
    traceback would bury the reason)."""
    try:
        check_deployment_safety()
        start_telemetry()
        warm(routes, model=model)
    except ConfigError as error:
        import os

        from sketchgen.logs import configure_logging, get_logger

        # The settings may be what is wrong: take the log format from the variable itself.
        configure_logging(fmt=os.environ.get("SKETCHGEN_LOG_FORMAT", "text"))
        get_logger(__name__).critical("refusing to start: %s: %s", error.field, error)
        raise SystemExit(1) from None


def start_telemetry(settings: Settings | None = None) -> bool:
    """Install the trace and metric exporters ``SKETCHGEN_TELEMETRY`` names (Cloud Trace and
    Cloud Monitoring in the cloud, files on make dev), once per process; logs then carry the
    trace of the span they are written in. False: nothing is exported."""
    from sketchgen.adapters.otel_export import install

    settings = settings or current_settings()
    return install(settings.telemetry, project=settings.project)


def build_authenticator(settings: Settings | None = None) -> Authenticator:
    import os

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
) -> Api:
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
        ready=ready,
    )


def _connect_origins(settings: Settings) -> list[str]:
    """Origins the page fetches from besides its own and Firebase sign-in's
    (:data:`sketchgen.api.routes_web.FIREBASE_AUTH_ORIGINS`): the stream function, where the
    blob store's signed URLs point, and the local emulators."""
    import os
    from urllib.parse import urlsplit

    urls = [
        settings.events_base_url,
        os.environ.get("STORAGE_EMULATOR_HOST"),
        os.environ.get("SKETCHGEN_S3_ENDPOINT_URL"),
        os.environ.get("FIREBASE_AUTH_EMULATOR_HOST"),
    ]
    if settings.blob_url.startswith("gs://"):
        urls.append("https://storage.googleapis.com")  # GcsBlobStore's v4 signed URLs
    elif settings.blob_url.startswith("s3://") and not os.environ.get("SKETCHGEN_S3_ENDPOINT_URL"):
        urls.append("https://*.amazonaws.com")  # boto3's presigned URLs (bucket, region hosts)
    origins = []
    for url in filter(None, urls):
        parts = urlsplit(url if "://" in url else f"http://{url}")
        origins.append(f"{parts.scheme}://{parts.netloc}")
    return origins


def web_config(settings: Settings) -> dict[str, object]:
    """What the web page needs to sign in; public values only (Firebase web config is public).
    With the Auth emulator (``make dev``) the page signs in against it, as the SDKs do."""
    import os

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


def configure(settings: Settings) -> None:
    """Build this process's service and API from ``settings`` rather than the environment's
    (the CLI's local service). Anything built before is forgotten."""
    global _settings, _service
    with _lock:
        _settings = settings
        _service = None
        _apis.clear()


def current_settings() -> Settings:
    """The settings this process builds from: those given to :func:`configure`, else the
    environment's."""
    return _settings or get_settings()


def service() -> SketchService:
    """The process-wide service, built on first use."""
    global _service
    if _service is None:
        with _lock:
            if _service is None:
                from sketchgen.logs import configure_logging

                settings = current_settings()
                configure_logging(settings.log_level, settings.log_format)
                if settings.job_store == "firestore":
                    from sketchgen.adapters.gcp._firestore import use_channels

                    use_channels(settings.firestore_channels)
                _service = build_service(settings)
    return _service


def api(routes: frozenset[str] | None = None) -> Api:
    """The process-wide API for a set of routes; the service behind it is built lazily."""
    key = routes or frozenset()
    if key not in _apis:
        with _lock:
            if key not in _apis:
                _apis[key] = build_api(service, current_settings(), routes=routes)
    return _apis[key]


def warm(routes: frozenset[str] | None = None, *, model: bool = False) -> None:
    """Build at instance start what every request needs, instead of on the first request.

    Called from each function's ``main.py`` while functions-framework imports it: Cloud Run
    sends no request until the instance listens and boosts its CPU while it starts, so this
    is off every request's clock. Built and kept: logging, settings, the service with its
    adapters (the model adapter, the style registry with every style loaded, the reference
    retriever, exercised once), the API for ``routes`` with its authenticator. Imported: the
    client libraries the adapters use (google.cloud.firestore / pubsub / storage,
    google.genai) and, for the worker, the finisher (:func:`sketchgen.generate.pipeline.warm_up`).

    Connected in the process that serves, not here: the Firestore and Pub/Sub clients (their
    channels, a first call, the ID-token signing keys: :class:`_Startup`). gunicorn forks its
    worker after this import and gRPC channels, and the threads they start, do not survive a
    fork; so the worker starts connecting as soon as it is forked and the health check
    (:func:`ready`) answers only once it has. With ``model`` (the worker) the model's client is
    built here: google-genai over httpx holds no socket or thread until its first call, so it
    crosses the fork intact.
    """
    from sketchgen.logs import configure_logging

    settings = current_settings()
    configure_logging(settings.log_level, settings.log_format)
    listens = routes is not None and "events" in routes
    _import_client_libraries(settings, model=model, listens=listens)
    built = service()
    if routes is not None:
        served = api(routes)
        if served.app_check is not None:
            served.app_check.prefetch()  # App Check's keys, before the first request
    # Load every style and run one retrieval: the first job's plan then reads no style files
    # and its numpy paths are warm. A style that fails to load fails only the jobs that ask
    # for it, as before: it must not keep the instance from serving the others.
    from sketchgen.prompt import PromptCompiler

    for style_id in built.styles.style_ids():
        try:
            style = built.styles.get_style(style_id)
            retriever = built.submission.retriever
            retriever.retrieve(PromptCompiler().compile("warm-up", style), style, top_k=3)
        except SketchgenError as error:
            from sketchgen.logs import get_logger

            get_logger(__name__).warning("style %s not warmed: %s", style_id, error)
    if model:
        from sketchgen.generate.pipeline import warm_up

        warm_up(built.model)
    global _startup, _fork_hooked
    if _startup is None:
        _startup = _Startup(settings, built, routes)
    if not _fork_hooked:
        # gunicorn forks the serving worker after main.py is imported: connect there.
        os.register_at_fork(after_in_child=_begin_startup)
        _fork_hooked = True


def _begin_startup() -> None:
    if _startup is not None:
        _startup.begin()


def ready(timeout_s: float = 1.0) -> bool:
    """Whether this instance has connected what every request uses (waiting up to
    ``timeout_s``); the health checks answer 503 until it has. Always true where :func:`warm`
    did not run (the CLI, ``sketchgen serve``, tests that build their own service)."""
    startup = _startup
    if startup is None:
        return True
    startup.begin()  # no fork happened (a server without workers, a test client): here, now
    return startup.done.wait(timeout_s)


class _Startup:
    """Connecting an instance's clients once, in the process that serves, off any request."""

    def __init__(self, settings: Settings, built: SketchService, routes: frozenset[str] | None):
        self.settings, self.built, self.routes = settings, built, routes
        self.done = threading.Event()
        self._started = False
        self._lock = threading.Lock()

    def begin(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
        threading.Thread(target=self._connect, name="sketchgen-startup", daemon=True).start()

    def _connect(self) -> None:
        from sketchgen.logs import get_logger

        log = get_logger(__name__)
        try:
            self._connect_clients()
        except Exception as error:  # the first requests then connect, as they always could
            log.warning("instance start: could not connect every client: %s", error)
        finally:
            self.done.set()

    def _connect_clients(self) -> None:
        settings = self.settings
        if settings.job_store == "firestore" or settings.model_rpm is not None:
            from sketchgen.adapters.gcp._firestore import client_for, connect

            client = client_for(settings.project, settings.firestore_database)
            connect(client, timeout_s=_CONNECT_TIMEOUT_S)
        queue = self.built.submission.queue
        connect_queue = getattr(queue, "connect", None)
        if connect_queue is not None:
            connect_queue(timeout_s=_CONNECT_TIMEOUT_S)
        if self.routes is not None:
            authenticator = api(self.routes).authenticator()
            fetch_keys = getattr(authenticator, "fetch_keys", None)
            if fetch_keys is not None:
                fetch_keys()


def _import_client_libraries(settings: Settings, *, model: bool, listens: bool = False) -> None:
    """Import (not construct) the SDKs the configured adapters will build clients from."""
    import importlib

    from sketchgen.generate import pipeline  # noqa: F401 - what every sketch runs through

    modules = []
    if settings.job_store == "firestore" or settings.model_rpm is not None:
        modules += ["google.cloud.firestore", "google.api_core.exceptions"]
    if listens and settings.job_store == "firestore":  # the stream function's job listeners
        modules += ["google.cloud.firestore_v1.watch", "google.api_core.bidi"]
    if settings.sketch_topic:
        modules.append("google.cloud.pubsub_v1")
    if settings.blob_url.startswith("gs://"):
        modules.append("google.cloud.storage")
    if model and not settings.use_offline_model:
        modules += ["google.genai", "google.genai.types"]
    for name in modules:
        importlib.import_module(name)


def reset() -> None:
    """Forget the built instances (tests change settings between cases)."""
    global _service, _settings, _startup
    with _lock:
        _service = None
        _settings = None
        _startup = None
        _apis.clear()
    get_settings.cache_clear()
