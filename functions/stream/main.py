"""Server-Sent Events for one job, fed by a Firestore listener. Kept thin.

An async function (functions-framework's ASGI stack: gunicorn with a uvicorn worker): an open
stream is a task on the event loop and an asyncio.Event on its job's one listener, not a thread
(docs/decisions/0014-async-stream-function.md).
"""

import functions_framework.aio
from starlette.requests import Request
from starlette.responses import Response

from sketchgen import bootstrap
from sketchgen.api.asgi import serve

ROUTES = frozenset({"events", "health"})

# Before serving: refuse what cannot work in the cloud, then build what every request
# needs now rather than on the first request (bootstrap.start_instance). The one instance
# of this process: functions-framework's targets are module-level functions (ADR 0070).
instance = bootstrap.start_instance(ROUTES)


@functions_framework.aio.http
async def stream(request: Request) -> Response:
    return await serve(instance.api(ROUTES), request)
