"""This process's instance, as one object its entry point creates and holds
(:class:`Instance`): the settings it runs on, the service and APIs it built (once, shared by
every request), and its start (:func:`start_instance`) — refuse what cannot work, build what
every request needs while functions-framework imports ``main.py``, connect the gRPC clients
once gunicorn has forked the serving process, answer the health check from that."""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

from sketchgen.bootstrap.edge import build_api, check_deployment_safety
from sketchgen.bootstrap.service import build_service
from sketchgen.bootstrap.startup import Startup, import_client_libraries
from sketchgen.errors import ConfigError
from sketchgen.settings import Settings, get_settings

if TYPE_CHECKING:
    from sketchgen.api.http import Api
    from sketchgen.services import SketchService


def read_settings() -> Settings:
    """The environment's settings (``SKETCHGEN_*``, ``GEMINI_*``, ``.env``): what an entry
    point builds from unless it has its own. A bad value is one :class:`ConfigError`."""
    return get_settings()


class Instance:
    """One process's service and APIs over its settings (the environment's when none are
    given), each built on first use and then shared by every request.

    Each function's ``main.py`` holds one (made by :func:`start_instance`), ``sketchgen
    serve`` and the CLI's service commands make their own, and a test makes one per case:
    there is no process-wide instance to reset. A host or test serves its own parts with
    :meth:`use_service` / :meth:`serve_api`."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings if settings is not None else read_settings()
        self._lock = threading.Lock()
        self._service: SketchService | None = None
        self._apis: dict[frozenset[str], Api] = {}
        self._startup: Startup | None = None  # set by warm(): what it connects before serving

    def service(self) -> SketchService:
        """The instance's service, built on first use."""
        if self._service is None:
            with self._lock:
                if self._service is None:
                    from sketchgen.logs import configure_logging

                    settings = self.settings
                    configure_logging(settings.log_level, settings.log_format)
                    if settings.job_store == "firestore":
                        from sketchgen.adapters.gcp._firestore import use_channels

                        use_channels(settings.firestore_channels)
                    self._service = build_service(settings)
        return self._service

    def api(self, routes: frozenset[str] | None = None) -> Api:
        """The instance's API for a set of routes; the service behind it is built lazily."""
        key = routes or frozenset()
        if key not in self._apis:
            with self._lock:
                if key not in self._apis:
                    self._apis[key] = build_api(
                        self.service, self.settings, routes=routes, ready=self.ready
                    )
        return self._apis[key]

    def built(self) -> SketchService | None:
        """The service this instance has built, if it has (without building it): what a
        host or a test checks after :meth:`warm`."""
        return self._service

    def use_service(self, given: SketchService) -> None:
        """Serve ``given`` instead of the service the settings would build (a host, or a
        test, with its own ports)."""
        with self._lock:
            self._service = given

    def serve_api(self, routes: frozenset[str], served: Api) -> None:
        """Serve ``served`` for ``routes`` instead of the API the settings would build (a
        host, or a test, with its own authenticator or limits)."""
        with self._lock:
            self._apis[routes] = served

    def warm(self, routes: frozenset[str] | None = None, *, model: bool = False) -> None:
        """Build at instance start what every request needs, instead of on the first request.

        Called from each function's ``main.py`` (through :func:`start_instance`) while
        functions-framework imports it: Cloud Run sends no request until the instance
        listens and boosts its CPU while it starts, so this is off every request's clock.
        Built and kept: logging, the service with its adapters (the model adapter, the style
        registry with every style loaded, the reference retriever, exercised once:
        :meth:`~sketchgen.services.submission.JobService.warm_up`), the API for ``routes``
        with its authenticator. Imported: the client libraries the adapters use
        (:func:`~sketchgen.bootstrap.startup.import_client_libraries`) and, for the worker,
        the finisher (:func:`sketchgen.generate.pipeline.warm_up`).

        Connected in the process that serves, not here: the Firestore and Pub/Sub clients
        (their channels, a first call, the ID-token signing keys: :class:`Startup`).
        gunicorn forks its worker after this import and gRPC channels, and the threads they
        start, do not survive a fork; so the worker starts connecting as soon as it is
        forked and the health check (:meth:`ready`) answers only once it has. With ``model``
        (the worker) the model's client is built here: google-genai over httpx holds no
        socket or thread until its first call, so it crosses the fork intact.
        """
        from sketchgen.logs import configure_logging

        settings = self.settings
        configure_logging(settings.log_level, settings.log_format)
        listens = routes is not None and "events" in routes
        import_client_libraries(settings, model=model, listens=listens)
        built = self.service()
        if routes is not None:
            served = self.api(routes)
            if served.app_check is not None:
                served.app_check.prefetch()  # App Check's keys, before the first request
        built.submission.warm_up()
        if model:
            from sketchgen.generate.pipeline import warm_up

            warm_up(built.model)
        if self._startup is None:
            api = None if routes is None else (lambda: self.api(routes))
            self._startup = Startup(settings, built, api)
            self._startup.begin_after_fork()

    def ready(self, timeout_s: float = 1.0) -> bool:
        """Whether this instance has connected what every request uses (waiting up to
        ``timeout_s``); the health checks answer 503 until it has. Always true where
        :meth:`warm` did not run (the CLI, ``sketchgen serve``, tests that build their own
        service)."""
        startup = self._startup
        if startup is None:
            return True
        startup.begin()  # no fork happened (a server without workers, a test client): here, now
        return startup.done.wait(timeout_s)


def start_instance(routes: frozenset[str] | None = None, *, model: bool = False) -> Instance:
    """What each function's ``main.py`` does as functions-framework imports it: read the
    settings, refuse what cannot work (:func:`check_deployment_safety`: dev or emulator
    sign-in in the cloud, a setting that cannot work), then build what every request needs
    (:meth:`Instance.warm`); the instance ``main.py`` then holds. A refusal is one log line
    naming the variable and a non-zero exit, so the instance never serves (a traceback would
    bury the reason)."""
    try:
        instance = Instance()
        check_deployment_safety(instance.settings)
        start_telemetry(instance.settings)
        instance.warm(routes, model=model)
    except ConfigError as error:
        from sketchgen.logs import configure_logging, get_logger

        # The settings may be what is wrong: take the log format from the variable itself.
        configure_logging(fmt=os.environ.get("SKETCHGEN_LOG_FORMAT", "text"))
        get_logger(__name__).critical("refusing to start: %s: %s", error.field, error)
        raise SystemExit(1) from None
    return instance


def start_telemetry(settings: Settings | None = None) -> bool:
    """Install the trace and metric exporters ``SKETCHGEN_TELEMETRY`` names (Cloud Trace and
    Cloud Monitoring in the cloud, files on make dev), once per process; logs then carry the
    trace of the span they are written in. False: nothing is exported. The service is the
    function this instance runs: ``K_SERVICE`` in the cloud, else ``FUNCTION_TARGET`` (set by
    the Cloud Functions runtime, and by make dev's function host, as the entry point)."""
    from sketchgen.adapters.otel_export import install

    settings = settings or read_settings()
    service = os.environ.get("K_SERVICE") or os.environ.get("FUNCTION_TARGET") or "sketchgen"
    return install(settings.telemetry, project=settings.project, service=service)
