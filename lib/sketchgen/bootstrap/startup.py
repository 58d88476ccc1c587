"""An instance's start in the process that serves: which client libraries the configured
adapters need (imported, not constructed, while functions-framework imports ``main.py``),
and connecting the gRPC clients once gunicorn has forked the serving process
(:class:`Startup`), which the health check waits for."""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sketchgen.api.http import Api
    from sketchgen.services import SketchService
    from sketchgen.settings import Settings

CONNECT_TIMEOUT_S = 10.0  # per client; past it the first requests connect, as they could


class Startup:
    """Connecting an instance's clients once, in the process that serves, off any request.

    ``api`` is the instance's API for ``routes`` (its authenticator fetches the ID-token
    signing keys); None where the instance serves no HTTP routes."""

    def __init__(
        self,
        settings: Settings,
        built: SketchService,
        api: Callable[[], Api] | None,
    ) -> None:
        self.settings, self.built, self.api = settings, built, api
        self.done = threading.Event()
        self._started = False
        self._lock = threading.Lock()

    def begin_after_fork(self) -> None:
        """gunicorn forks the serving worker after ``main.py`` is imported: connect there.
        The hook holds the startup weakly (a test process makes many instances)."""
        ref = weakref.ref(self)

        def begin() -> None:
            startup = ref()
            if startup is not None:
                startup.begin()

        os.register_at_fork(after_in_child=begin)

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
        if self.api is not None:
            authenticator = self.api().authenticator()
            fetch_keys = getattr(authenticator, "fetch_keys", None)
            if fetch_keys is not None:
                fetch_keys()


def import_client_libraries(settings: Settings, *, model: bool, listens: bool = False) -> None:
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
