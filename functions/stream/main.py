"""Server-Sent Events for one job, fed by a Firestore listener. Kept thin."""

import functions_framework
from flask import Request, Response

from sketchgen import bootstrap

ROUTES = frozenset({"events", "health"})

# Before serving: refuse what cannot work in the cloud, then build what every request
# needs now rather than on the first request (bootstrap.start_instance).
bootstrap.start_instance(ROUTES)


@functions_framework.http
def stream(request: Request) -> Response:
    return bootstrap.api(ROUTES).handle(request)
