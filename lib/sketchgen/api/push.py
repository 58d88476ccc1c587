"""Pub/Sub push deliveries for the sketch worker and the scheduled regeneration.

Status codes are the acknowledgement: 2xx acks; anything else has Pub/Sub redeliver with the
subscription's backoff, and after the last attempt the message goes to the dead-letter topic.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from werkzeug.wrappers import Request, Response

from sketchgen import bounded_json, telemetry
from sketchgen.errors import InputError
from sketchgen.logs import get_logger, log_context
from sketchgen.metadata import JOB_ID_PATTERN
from sketchgen.ports import SketchTask
from sketchgen.services import BatchRegeneration, SketchWorker, Upkeep

__all__ = [
    "DEAD_LETTER_PATH",
    "RegenerateMessage",
    "decode_pubsub_data",
    "handle_regenerate",
    "handle_sketch_push",
]

log = get_logger(__name__)


class _TaskMessage(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    job_id: str = Field(pattern=JOB_ID_PATTERN)
    index: int = Field(ge=0, lt=64)
    priority: str = "interactive"


class RegenerateMessage(BaseModel):
    """What Cloud Scheduler publishes to the regenerate topic.

    ``{"style_id": "loose-ink-mascot", "batch": true}`` re-runs a style's jobs;
    ``{"action": "maintain"}`` only does the upkeep every message starts with: storing the
    results of Batch API batches that have ended, and the sweep (:meth:`Upkeep.sweep`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    action: Literal["regenerate", "maintain"] = "regenerate"
    style_id: str | None = Field(default=None, max_length=64)
    job_ids: list[str] | None = Field(default=None, max_length=500)
    batch: bool = False
    limit: int = Field(default=100, ge=1, le=1000)


def handle_regenerate(
    data: Any, run_id: str, batch: BatchRegeneration, upkeep: Upkeep
) -> dict[str, Any]:
    """One scheduled message. A malformed one is logged and dropped: retrying cannot fix it."""
    try:
        message = RegenerateMessage.model_validate(decode_pubsub_data(data))
    except (TypeError, ValueError, binascii.Error, ValidationError) as error:
        log.error("malformed regenerate message: %s", str(error)[:200])
        return {"error": "malformed message"}
    summary: dict[str, Any] = {**batch.collect_batches(), **upkeep.sweep()}
    if message.action == "regenerate":
        try:
            jobs = batch.regenerate(
                style_id=message.style_id,
                job_ids=message.job_ids,
                batch=message.batch,
                run_id=run_id,
                limit=message.limit,
            )
        except InputError as error:
            log.error("regenerate message refused: %s", error)
            return {**summary, "error": str(error)}
        summary["jobs_regenerated"] = len(jobs)
    log.info("regenerate run %s: %s", run_id, summary)
    return summary


def decode_pubsub_data(data: str | bytes | None) -> Any:
    """The JSON payload of a Pub/Sub message (base64 in push envelopes and CloudEvents)."""
    if not data:
        raise ValueError("message has no data")
    raw = base64.b64decode(data, validate=True) if isinstance(data, str) else data
    return bounded_json.loads(raw)


# Our push messages are a few hundred bytes; Pub/Sub's own ceiling (10 MB) is not a reason to
# buffer that much of whatever reaches the worker's URL.
MAX_PUSH_BYTES = 64 * 1024
DEAD_LETTER_PATH = "/dead-letter"  # infra/functions.yaml: sketch_worker.trigger.dead_letter_path


def handle_sketch_push(
    request: Request,
    worker: SketchWorker,
    ready: Callable[[float], bool] = lambda timeout_s: True,
) -> Response:
    """A sketch task pushed by the subscription, or at ``/dead-letter`` one it gave up on.
    A GET is a health check (Pub/Sub always POSTs): 503 until the instance is ``ready``."""
    if request.method == "GET":
        if not ready(1.0):
            return Response("starting", status=503, mimetype="text/plain")
        return Response("ok", mimetype="text/plain")
    try:
        raw = request.stream.read(MAX_PUSH_BYTES + 1)
        if len(raw) > MAX_PUSH_BYTES:
            raise ValueError(f"push body is over {MAX_PUSH_BYTES} bytes")
        envelope = bounded_json.loads(raw)
        message = envelope["message"]
        task = _TaskMessage.model_validate(decode_pubsub_data(message["data"]))
    except (KeyError, TypeError, ValueError, binascii.Error, ValidationError) as error:
        # Not ours to fix by retrying, but kept: after the last attempt it lands in the DLQ.
        log.error("malformed push message: %s", str(error)[:200])
        return Response(status=400)
    sketch = SketchTask(task.job_id, task.index, task.priority)
    attributes = message.get("attributes") or {}
    dead_letter = request.path.rstrip("/") == DEAD_LETTER_PATH
    with (
        log_context(job_id=task.job_id, sketch=task.index),
        telemetry.delivery(
            attributes, dead_letter=dead_letter, attempt=message.get("deliveryAttempt")
        ) as span,
    ):
        if dead_letter:
            # Forwarded messages keep the source subscription's count in an attribute.
            count = str(attributes.get("CloudPubSubDeadLetterSourceDeliveryCount", ""))
            deliveries = int(count) if count.isdigit() else None
            ack = worker.fail_undeliverable(sketch, deliveries)
        else:
            ack = worker.run_sketch(sketch)
        telemetry.set_fields(span, acked=ack)
    return Response(status=204 if ack else 429)
