"""The composition root: the one place that reads settings and builds clients and adapters.

- :mod:`~sketchgen.bootstrap.adapters`: one adapter per port, chosen by the settings.
- :mod:`~sketchgen.bootstrap.wiring`: the services wired to each other over given ports
  (:func:`assemble`).
- :mod:`~sketchgen.bootstrap.service`: those ports from the settings (:func:`build_service`).
- :mod:`~sketchgen.bootstrap.edge`: sign-in, App Check, the API and the page's public values.
- :mod:`~sketchgen.bootstrap.instance`: this process's settings, service and APIs, and its
  start (:func:`warm`, :func:`ready`).

Nothing is built at import time. Each function's ``main.py`` calls :func:`start_instance` as
functions-framework imports it, so what every request needs is built before the instance
serves; requests then call :func:`service` / :func:`api` and get those instances.
"""

from sketchgen.bootstrap.adapters import (
    build_deployment_ceiling,
    build_embedder,
    build_generator,
    build_image_model,
    build_style_registry,
    build_usage_ledger,
)
from sketchgen.bootstrap.edge import (
    LOCAL_OWNER,
    build_api,
    build_app_check,
    build_authenticator,
    check_deployment_safety,
    web_config,
)
from sketchgen.bootstrap.instance import (
    api,
    built,
    configure,
    current_settings,
    ready,
    reset,
    serve_api,
    service,
    start_instance,
    start_telemetry,
    use_service,
    warm,
)
from sketchgen.bootstrap.service import build_service, build_spend_control, build_style_catalog
from sketchgen.bootstrap.wiring import assemble, builtin_styles_catalog

__all__ = [
    "LOCAL_OWNER",
    "api",
    "assemble",
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
    "built",
    "builtin_styles_catalog",
    "check_deployment_safety",
    "configure",
    "current_settings",
    "ready",
    "reset",
    "serve_api",
    "service",
    "start_instance",
    "start_telemetry",
    "use_service",
    "warm",
    "web_config",
]
