"""Pub/Sub push target: draws one sketch per message. Kept thin."""

import functions_framework
from flask import Request, Response

from sketchgen import bootstrap
from sketchgen.api.push import handle_sketch_push

# Before serving anything: no dev or emulator sign-in in the cloud.
bootstrap.exit_if_unsafe_deployment()
# What every request needs, built now rather than by the first request (bootstrap.warm).
bootstrap.warm(model=True)


@functions_framework.http
def sketch_worker(request: Request) -> Response:
    return handle_sketch_push(request, bootstrap.service().worker)
