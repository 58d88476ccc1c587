"""Server-Sent Events for one job, fed by a Firestore listener. Kept thin."""

import functions_framework
from flask import Request, Response

from sketchgen import bootstrap

ROUTES = frozenset({"events", "health"})


@functions_framework.http
def stream(request: Request) -> Response:
    return bootstrap.api(ROUTES).handle(request)
