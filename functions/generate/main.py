"""HTTPS API (``generate``) and scheduled regeneration (``regenerate``). Kept thin."""

import functions_framework
from cloudevents.http import CloudEvent
from flask import Request, Response

from sketchgen import bootstrap
from sketchgen.api.push import handle_regenerate

ROUTES = frozenset({"jobs", "blobs", "styles", "health", "web", "studio"})

# Before serving: refuse what cannot work in the cloud, then build what every request
# needs now rather than on the first request (bootstrap.start_instance). The one instance
# of this process: functions-framework's targets are module-level functions (ADR 0070).
instance = bootstrap.start_instance(ROUTES)


@functions_framework.http
def generate(request: Request) -> Response:
    return instance.api(ROUTES).handle(request)


@functions_framework.cloud_event
def regenerate(event: CloudEvent) -> None:
    # The CloudEvent id is the Pub/Sub message id: a redelivered message re-runs idempotently.
    service = instance.service()
    handle_regenerate(event.data["message"]["data"], event["id"], service.batch, service.upkeep)
