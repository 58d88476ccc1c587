"""Traces and metrics of a job, on the OpenTelemetry API (docs/decisions/0030).

One trace per job: the ``POST`` that submits it is the root; each Pub/Sub message carries the
W3C trace context in its attributes (:func:`inject`, :func:`extract`), so each worker delivery,
its model call, its Storage write and the finaliser hang below the message that caused them;
the job document keeps the context too (``JobRecord.traceparent``), so the event stream joins
the same trace. Spans carry the job id, user id, model, sketch index, finish reason and cost.

This module only speaks the API: with nothing configured every call is a no-op (the library,
the CLI, the tests). :mod:`sketchgen.adapters.otel_export` installs the SDK and the exporters
when an instance starts (Cloud Trace and Cloud Monitoring in the cloud, OTLP JSON lines files
on ``make dev``); the instruments below resolve to it then, wherever they were made.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from sketchgen.jobs import JobRecord, utcnow
from sketchgen.logs import add_record_fields, current_log_context

__all__ = [
    "ATTR",
    "Instruments",
    "SpanKind",
    "delivery",
    "extract",
    "inject",
    "instruments",
    "job_ended",
    "join_logs_to_traces",
    "local_providers",
    "mark_failed",
    "open_stream",
    "parent_from_traceparent",
    "set_fields",
    "span",
    "start_span",
    "traceparent",
]

TRACER_NAME = "sketchgen"

# Span and metric attribute names, one place.
ATTR = {
    "job_id": "sketchgen.job_id",
    "user_id": "enduser.id",
    "model": "gen_ai.request.model",
    "sketch": "sketchgen.sketch_index",
    "finish_reason": "gen_ai.response.finish_reason",
    "cost_usd": "sketchgen.cost_usd",
    "delivery": "messaging.delivery_attempt",
}
# log_context() field -> span attribute: a span opened inside a log context gets its ids.
_FROM_LOG_CONTEXT = {"job_id": ATTR["job_id"], "sketch": ATTR["sketch"]}

_propagator = TraceContextTextMapPropagator()


# A provider handed in (tests, benchmarks: local_providers) instead of the process's global one.
_local_tracer_provider: contextvars.ContextVar[trace.TracerProvider | None]
_local_tracer_provider = contextvars.ContextVar("sketchgen_tracer_provider", default=None)
_local_instruments: contextvars.ContextVar[Instruments | None] = contextvars.ContextVar(
    "sketchgen_instruments", default=None
)


def _tracer() -> trace.Tracer:
    # Looked up at each use: the provider is installed when the instance starts, and a
    # tracer made before that would stay a no-op.
    return trace.get_tracer(TRACER_NAME, tracer_provider=_local_tracer_provider.get())


@contextmanager
def local_providers(
    tracer_provider: trace.TracerProvider, meter_provider: metrics.MeterProvider
) -> Iterator[None]:
    """Spans and metrics made inside go to these providers, not the process's (the global
    ones can be set once per process)."""
    tracer_token = _local_tracer_provider.set(tracer_provider)
    meter_token = _local_instruments.set(Instruments(meter_provider.get_meter(TRACER_NAME)))
    try:
        yield
    finally:
        _local_tracer_provider.reset(tracer_token)
        _local_instruments.reset(meter_token)


def _attributes(fields: Mapping[str, Any]) -> dict[str, Any]:
    context = {
        _FROM_LOG_CONTEXT[k]: v for k, v in current_log_context().items() if k in _FROM_LOG_CONTEXT
    }
    return {**context, **_attributes_only(fields)}


@contextmanager
def span(
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    parent: otel_context.Context | None = None,
    **fields: Any,
) -> Iterator[Span]:
    """A span around a block, current inside it; an exception marks it failed and goes on.

    ``fields`` use the short names of :data:`ATTR` (``job_id=...``; any other name is put
    under ``sketchgen.``); the job id and sketch index of the enclosing
    :func:`sketchgen.logs.log_context` are added by themselves.
    """
    with _tracer().start_as_current_span(
        name, context=parent, kind=kind, attributes=_attributes(fields)
    ) as current:
        yield current


def start_span(
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    parent: otel_context.Context | None = None,
    **fields: Any,
) -> Span:
    """A span the caller ends (``span.end()``), not made current: one that outlives the call
    that opens it (an event stream ends when its client goes)."""
    return _tracer().start_span(name, context=parent, kind=kind, attributes=_attributes(fields))


def set_fields(target: Span, **fields: Any) -> None:
    """Attributes learnt once the span is open (the job id after the job is stored)."""
    target.set_attributes(_attributes_only(fields))


def _attributes_only(fields: Mapping[str, Any]) -> dict[str, Any]:
    # Names of ATTR, or ours under sketchgen. (blob_key -> sketchgen.blob_key).
    return {ATTR.get(k, f"sketchgen.{k}"): v for k, v in fields.items() if v is not None}


def mark_failed(target: Span, description: str) -> None:
    target.set_status(Status(StatusCode.ERROR, description))


def inject(carrier: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """Write the current span's W3C trace context (``traceparent``) into ``carrier``."""
    _propagator.inject(carrier)
    return carrier


def extract(carrier: Mapping[str, str] | None) -> otel_context.Context | None:
    """The remote parent a carrier (message attributes, headers) names, or None."""
    if not carrier:
        return None
    found = _propagator.extract({k.lower(): str(v) for k, v in carrier.items()})
    parent = trace.get_current_span(found).get_span_context()
    return found if parent.is_valid else None


@contextmanager
def delivery(
    attributes: Mapping[str, Any] | None, *, dead_letter: bool, attempt: Any = None
) -> Iterator[Span]:
    """One push delivery of a sketch message, below the span that published it (the W3C
    context in the message's attributes); a dead letter also counts in
    ``sketchgen.dead_letters``."""
    name = "sketch_worker.dead_letter" if dead_letter else "sketch_worker.deliver"
    carrier = {str(k): str(v) for k, v in (attributes or {}).items()}
    with span(name, kind=SpanKind.CONSUMER, parent=extract(carrier), delivery=attempt) as current:
        if dead_letter:
            instruments().dead_letters.add(1)
        yield current


def traceparent() -> str | None:
    """The current span as a W3C ``traceparent`` value (kept with the job), or None."""
    return inject({}).get("traceparent")


def parent_from_traceparent(value: str | None) -> otel_context.Context | None:
    return extract({"traceparent": value}) if value else None


def job_ended(job: JobRecord) -> None:
    """The finaliser's span learns the owner, status and cost; the job's time to done, its
    sketches by status and their cost by user and model are counted. A finaliser that runs
    again (a redelivery after a crash) counts the job again: rare, and on the safe side."""
    model = job.plan.model_id
    total = sum(s.cost_usd or 0.0 for s in job.sketches.values())
    set_fields(
        trace.get_current_span(),
        user_id=job.owner_uid,
        model=model,
        job_status=job.status,
        cost_usd=total,
    )
    if not job.is_final:
        return
    meters = instruments()
    ended = {"model": model, "status": job.status}
    meters.time_to_done.record((utcnow() - job.created_at).total_seconds(), ended)
    for sketch in job.sketches.values():
        meters.sketches.add(1, {"model": model, "status": sketch.status})
    meters.cost.add(total, {"model": model, "user_id": job.owner_uid})


def open_stream(job: JobRecord, uid: str) -> Callable[[], None]:
    """An event stream's span, below the span that submitted its job, and one more in
    ``sketchgen.streams.active``; the returned function ends both (once) when it closes."""
    opened = start_span(
        "stream",
        kind=SpanKind.SERVER,
        parent=parent_from_traceparent(job.traceparent),
        job_id=job.job_id,
        user_id=uid,
    )
    active = instruments().active_streams
    active.add(1)
    closed = False

    def close() -> None:
        nonlocal closed
        if not closed:
            closed = True
            active.add(-1)
            opened.end()

    return close


# -- logs joined to traces ---------------------------------------------------------------------


def join_logs_to_traces(project: str | None) -> Callable[[], dict[str, Any]]:
    """Every JSON log line inside a span carries the fields Cloud Logging joins traces on:
    ``logging.googleapis.com/trace`` (``projects/P/traces/ID``) and ``…/spanId``."""

    def fields() -> dict[str, Any]:
        context = trace.get_current_span().get_span_context()
        if not context.is_valid:
            return {}
        trace_id = format(context.trace_id, "032x")
        return {
            "logging.googleapis.com/trace": (
                f"projects/{project}/traces/{trace_id}" if project else trace_id
            ),
            "logging.googleapis.com/spanId": format(context.span_id, "016x"),
            "logging.googleapis.com/trace_sampled": context.trace_flags.sampled,
        }

    add_record_fields(fields)
    return fields


# -- metrics ------------------------------------------------------------------------------------


class Instruments:
    """The service's metrics (names as Cloud Monitoring shows them under
    ``workload.googleapis.com/``; infra/terraform's dashboard and alerts read them)."""

    def __init__(self, meter: metrics.Meter) -> None:
        self.time_to_done = meter.create_histogram(
            "sketchgen.job.time_to_done",
            unit="s",
            description="From submission to the job's final status (by model and status).",
        )
        self.sketches = meter.create_counter(
            "sketchgen.sketches",
            unit="{sketch}",
            description="Sketches ended, by model and status (ok, failed, cancelled).",
        )
        self.model_latency = meter.create_histogram(
            "sketchgen.model.latency",
            unit="s",
            description="One model call, by model and finish reason.",
        )
        self.quota_wait = meter.create_histogram(
            "sketchgen.quota.wait",
            unit="s",
            description="Time a delivery waited for a model slot, by model and outcome.",
        )
        self.cost = meter.create_counter(
            "sketchgen.cost",
            unit="{USD}",
            description="What sketches cost, by user and model (counted when the job ends).",
        )
        self.dead_letters = meter.create_counter(
            "sketchgen.dead_letters",
            unit="{delivery}",
            description="Sketch messages Pub/Sub gave up on (dead-letter deliveries).",
        )
        self.holds_given_up = meter.create_counter(
            "sketchgen.holds.given_up",
            unit="{delivery}",
            description="Deliveries whose work ran past the delivery's budget (a hung call or "
            "slot wait): the sketch was released for the next delivery.",
        )
        self.active_streams = meter.create_up_down_counter(
            "sketchgen.streams.active",
            unit="{stream}",
            description="Event streams open in this instance.",
        )


_instruments: Instruments | None = None


def instruments() -> Instruments:
    """The instruments on the global meter provider (proxies until the SDK is installed)."""
    global _instruments
    local = _local_instruments.get()
    if local is not None:
        return local
    if _instruments is None:
        _instruments = Instruments(metrics.get_meter(TRACER_NAME))
    return _instruments
