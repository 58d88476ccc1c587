"""Server-Sent Events for one job, fed by a Firestore listener. Kept thin."""

import functions_framework
from flask import Request, Response

from sketchgen import bootstrap

ROUTES = frozenset({"events", "health"})

# Before serving anything: no dev or emulator sign-in in the cloud.
bootstrap.exit_if_unsafe_deployment()

# What every request needs, built now rather than by the first request (bootstrap.warm).
bootstrap.warm(ROUTES)


@functions_framework.http
def stream(request: Request) -> Response:
    return bootstrap.api(ROUTES).handle(request)
