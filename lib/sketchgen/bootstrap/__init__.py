"""The composition root: the one place that reads settings and builds clients and adapters.

- :mod:`~sketchgen.bootstrap.adapters`: one adapter per port, chosen by the settings.
- :mod:`~sketchgen.bootstrap.wiring`: the services wired to each other over given ports
  (:func:`assemble`).
- :mod:`~sketchgen.bootstrap.service`: those ports from the settings (:func:`build_service`).
- :mod:`~sketchgen.bootstrap.edge`: sign-in, App Check, the API and the page's public values.
- :mod:`~sketchgen.bootstrap.library`: the library's defaults and a library job's parts
  (``import sketchgen``, the CLI's jobs); :mod:`~sketchgen.bootstrap.local`: a local run's
  settings (``sketchgen serve``, the CLI's service commands).
- :mod:`~sketchgen.bootstrap.instance`: an :class:`Instance` (settings, service, APIs) and
  its start (:func:`start_instance`); :mod:`~sketchgen.bootstrap.startup` connects its
  clients in the serving process.

Nothing is built at import time and the package holds no state. Each function's ``main.py``
calls :func:`start_instance` as functions-framework imports it and keeps the
:class:`Instance` it returns (what every request needs is built before it serves); its
requests then call ``instance.service()`` / ``instance.api(routes)``.
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
from sketchgen.bootstrap.instance import Instance, read_settings, start_instance, start_telemetry
from sketchgen.bootstrap.library import (
    LibraryJob,
    SettingsDefaults,
    library_job,
    library_output_dir,
    offline_model_chosen,
)
from sketchgen.bootstrap.local import (
    describe_local_service,
    local_blob_folder,
    local_settings,
    local_style_catalog,
)
from sketchgen.bootstrap.service import build_service, build_spend_control, build_style_catalog
from sketchgen.bootstrap.wiring import assemble, builtin_styles_catalog

__all__ = [
    "LOCAL_OWNER",
    "Instance",
    "LibraryJob",
    "SettingsDefaults",
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
    "builtin_styles_catalog",
    "check_deployment_safety",
    "describe_local_service",
    "library_job",
    "library_output_dir",
    "local_blob_folder",
    "local_settings",
    "local_style_catalog",
    "offline_model_chosen",
    "read_settings",
    "start_instance",
    "start_telemetry",
    "web_config",
]
