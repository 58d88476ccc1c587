"""Server-Sent Events for one job, fed by the job store's document listener.

Event ids are the sketches' ``seq`` (the order they ended in, 1..N) and ``N + 1`` for
``done``, so a client reconnecting with ``Last-Event-ID: k`` is sent exactly what came after k.
Every stream of a job in this process shares one listener (:mod:`sketchgen.api.feed`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from sketchgen.api.feed import JobFeed, feed_for
from sketchgen.jobs import TERMINAL_SKETCH, JobRecord
from sketchgen.layout import metadata_key, sketch_key
from sketchgen.ports import JobStore

__all__ = ["event_stream", "format_event", "parse_last_event_id"]


def parse_last_event_id(value: str | None) -> int:
    """A malformed Last-Event-ID counts as none: the client gets the whole stream again."""
    try:
        return max(0, int(value or 0))
    except ValueError:
        return 0


def format_event(event: str, event_id: int, data: dict[str, Any]) -> bytes:
    return f"id: {event_id}\nevent: {event}\ndata: {json.dumps(data)}\n\n".encode()


def event_stream(
    jobs: JobStore,
    job_id: str,
    last_event_id: int,
    *,
    url_for: Callable[[str], str],
    heartbeat_s: float = 15.0,
    feed: JobFeed | None = None,
) -> Iterator[bytes]:
    sent = last_event_id
    # Tell the browser how soon to reconnect, and open the stream at once through proxies.
    yield b"retry: 2000\n\n"
    with (feed or feed_for(jobs)).subscribe(job_id) as subscription:
        while True:
            item = subscription.next(heartbeat_s)
            if item is None:
                yield b": heartbeat\n\n"
                continue
            if not isinstance(item, JobRecord):  # CLOSED: the listener stopped
                return
            for seq, index, state in sorted(
                (s.seq, int(i), s)
                for i, s in item.sketches.items()
                if s.status in TERMINAL_SKETCH and s.seq is not None and s.seq > sent
            ):
                data = {
                    "index": index,
                    "status": state.status,
                    "url": url_for(sketch_key(job_id, index)) if state.status == "ok" else None,
                    "error": state.error,
                    "finish_reason": state.finish_reason,
                }
                yield format_event("sketch", seq, data)
                sent = seq
            if item.is_final:
                metadata_url = url_for(metadata_key(job_id)) if item.metadata_path else None
                done = {"status": item.status, "metadata_url": metadata_url}
                yield format_event("done", item.event_seq + 1, done)
                return
