"""This process's instance: the settings it runs on, the service and APIs it built (once,
shared by every request), and its start — refuse what cannot work, build what every request
needs while functions-framework imports ``main.py``, connect the gRPC clients once gunicorn
has forked the serving process, answer the health check from that (:func:`ready`)."""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

from sketchgen.bootstrap.edge import build_api, check_deployment_safety
from sketchgen.bootstrap.service import build_service
from sketchgen.errors import ConfigError
from sketchgen.settings import Settings, get_settings

if TYPE_CHECKING:
    from sketchgen.api.http import Api
    from sketchgen.services import SketchService

_lock = threading.Lock()
_settings: Settings | None = None  # set by configure(); else the environment's
_service: SketchService | None = None
_apis: dict[frozenset[str], Api] = {}
_startup: _Startup | None = None  # set by warm(): what this instance connects before serving
_fork_hooked = False
CONNECT_TIMEOUT_S = 10.0  # per client; past it the first requests connect, as they could


def start_instance(routes: frozenset[str] | None = None, *, model: bool = False) -> None:
    """What each function's ``main.py`` does as functions-framework imports it: refuse what
    cannot work (:func:`check_deployment_safety`: dev or emulator sign-in in the cloud, a
    setting that cannot work), then build what every request needs (:func:`warm`). A refusal
    is one log line naming the variable and a non-zero exit, so the instance never serves (a
    traceback would bury the reason)."""
    try:
        check_deployment_safety(current_settings())
        start_telemetry()
        warm(routes, model=model)
    except ConfigError as error:
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
                _apis[key] = build_api(service, current_settings(), routes=routes, ready=ready)
    return _apis[key]


def built() -> SketchService | None:
    """The service this process has built, if it has (without building it): what a host
    or a test checks after :func:`warm`."""
    return _service


def use_service(given: SketchService) -> None:
    """Serve ``given`` in this process instead of the service the settings would build (a
    host, or a test, with its own ports); :func:`reset` forgets it."""
    global _service
    with _lock:
        _service = given


def serve_api(routes: frozenset[str], served: Api) -> None:
    """Serve ``served`` for ``routes`` in this process instead of the API the settings
    would build (a host, or a test, with its own authenticator or limits)."""
    with _lock:
        _apis[routes] = served


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
    built.submission.warm_up()  # every style loaded, one retrieval run
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
            connect(client, timeout_s=CONNECT_TIMEOUT_S)
        queue = self.built.submission.queue
        connect_queue = getattr(queue, "connect", None)
        if connect_queue is not None:
            connect_queue(timeout_s=CONNECT_TIMEOUT_S)
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
