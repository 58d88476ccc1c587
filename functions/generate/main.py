"""HTTPS API (``generate``) and scheduled regeneration (``regenerate``). Kept thin."""

import functions_framework
from cloudevents.http import CloudEvent
from flask import Request, Response

from sketchgen import bootstrap
from sketchgen.api.push import RegenerateMessage, decode_pubsub_data
from sketchgen.logs import get_logger

ROUTES = frozenset({"jobs", "blobs", "styles", "health", "web"})
log = get_logger("sketchgen.functions.regenerate")


@functions_framework.http
def generate(request: Request) -> Response:
    return bootstrap.api(ROUTES).handle(request)


@functions_framework.cloud_event
def regenerate(event: CloudEvent) -> None:
    message = RegenerateMessage.model_validate(decode_pubsub_data(event.data["message"]["data"]))
    jobs = bootstrap.service().regenerate(
        style_id=message.style_id, job_ids=message.job_ids, limit=message.limit
    )
    log.info("regenerating %d jobs", len(jobs))
