"""``/v1/jobs/{id}/events``: Server-Sent Events for one job (the stream function)."""

from __future__ import annotations

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from sketchgen import telemetry
from sketchgen.api.core import Routing, base_url, checked_job_id
from sketchgen.api.stream_slots import StreamSlots

__all__ = ["EventRoutes"]


class EventRoutes:
    def __init__(
        self, routing: Routing, *, heartbeat_s: float = 15.0, streams: StreamSlots | None = None
    ) -> None:
        self.routing = routing
        self.heartbeat_s = heartbeat_s
        self.streams = streams or StreamSlots(per_user=5)

    def rules(self) -> list[Rule]:
        return [Rule("/v1/jobs/<job_id>/events", endpoint=self.events, methods=["GET"])]

    def events(self, request: Request, job_id: str) -> Response:
        from sketchgen.api.sse import EventStream, parse_last_event_id

        uid = self.routing.uid(request)
        service = self.routing.service()
        job = service.submission.get_job(uid, checked_job_id(job_id))
        last_id = parse_last_event_id(request.headers.get("Last-Event-ID"))
        if job.is_final and last_id > job.event_seq:
            # The client already has `done`; 204 tells an EventSource to stop reconnecting.
            return Response(status=204)
        self.streams.acquire(uid)  # per user, per instance: 429 too_many_streams
        # Iterated by a WSGI server, async-iterated by the ASGI stream function.
        body = EventStream(
            service.jobs,
            job.job_id,
            last_id,
            url_for=lambda key: self.routing.blob_url(request, job.job_id, key),
            heartbeat_s=self.heartbeat_s,
            cached_url=lambda key: self.routing.cached_blob_url(request, key),
            url_scope=base_url(request),  # what blob_url's URLs depend on besides the key
        )
        return Response(
            self.streams.hold(uid, body, on_close=telemetry.open_stream(job, uid)),
            mimetype="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            direct_passthrough=True,
        )
