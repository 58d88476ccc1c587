"""Pub/Sub push target: draws one sketch per message. Kept thin."""

import functions_framework
from flask import Request, Response

from sketchgen import bootstrap
from sketchgen.api.push import handle_sketch_push

# Before serving: refuse what cannot work in the cloud, then build what every request
# needs now rather than on the first request (bootstrap.start_instance). The one instance
# of this process: functions-framework's targets are module-level functions (ADR 0070).
instance = bootstrap.start_instance(model=True)


@functions_framework.http
def sketch_worker(request: Request) -> Response:
    return handle_sketch_push(request, instance.service().worker, instance.ready)
