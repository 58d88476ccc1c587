"""Spans, metrics and trace-joined logs (sketchgen.telemetry, adapters.traced, otel_export),
on providers of the test's own (telemetry.local_providers): the process's global ones are
never set here."""

from __future__ import annotations

import base64
import io
import json
import logging
from concurrent.futures import Future
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from sketchgen import telemetry
from sketchgen.adapters.gcp.pubsub_task_queue import PubSubTaskQueue
from sketchgen.adapters.otel_export import FileSpanExporter
from sketchgen.adapters.traced import TracedImageModel
from sketchgen.api.push import handle_sketch_push
from sketchgen.cli import main as cli_main
from sketchgen.cli_trace import job_traces, read_spans, waterfall
from sketchgen.errors import ModelError
from sketchgen.logs import (
    _ContextFilter,
    _JsonFormatter,
    get_logger,
    log_context,
    remove_record_fields,
)
from sketchgen.ports import ImageRequest, SketchTask
from sketchgen.pricing import price_per_image
from sketchgen.schemas import Variation
from tests.helpers.fakes import FakeImageModel
from tests.helpers.telemetry import Telemetry

JOB = "20261204_120000-abcdef"


def _request(index: int = 2, model: str = "gemini-2.5-flash-image") -> ImageRequest:
    variation = Variation(index=index, layout="close_up", exaggeration="subtle")
    return ImageRequest(index=index, prompt="p", brief="b", variation=variation, model=model)


def test_a_model_call_is_a_span_with_its_finish_reason_cost_and_latency(otel: Telemetry) -> None:
    model = TracedImageModel(FakeImageModel())
    with log_context(job_id=JOB, sketch=2):
        model.generate_image(_request())
    (call,) = otel.finished("model.generate")
    assert call.kind is trace.SpanKind.CLIENT
    attributes = dict(call.attributes or {})
    assert attributes["sketchgen.job_id"] == JOB
    assert attributes["sketchgen.sketch_index"] == 2
    assert attributes["gen_ai.request.model"] == "gemini-2.5-flash-image"
    assert attributes["gen_ai.response.finish_reason"] == "STOP"
    assert attributes["sketchgen.cost_usd"] == price_per_image("gemini-2.5-flash-image", "1K")
    (latency,) = otel.points("sketchgen.model.latency")
    assert latency.count == 1
    assert dict(latency.attributes) == {"model": "gemini-2.5-flash-image", "finish_reason": "STOP"}


def test_a_failed_model_call_is_an_error_span_that_cost_nothing(otel: Telemetry) -> None:
    refused = FakeImageModel(failures={2: lambda: ModelError("blocked", finish_reason="SAFETY")})
    model = TracedImageModel(refused)
    with pytest.raises(ModelError):
        model.generate_image(_request())
    (call,) = otel.finished("model.generate")
    assert call.status.status_code is trace.StatusCode.ERROR
    assert dict(call.attributes or {})["gen_ai.response.finish_reason"] == "SAFETY"
    assert dict(call.attributes or {})["sketchgen.cost_usd"] == 0.0
    (latency,) = otel.points("sketchgen.model.latency")
    assert dict(latency.attributes)["finish_reason"] == "SAFETY"
    # Everything else of the adapter is still there.
    assert model.requests == refused.requests and model.name == "fake"


class _Publisher:
    """What PubSubTaskQueue needs of a PublisherClient: publish() -> a future."""

    def __init__(self) -> None:
        self.messages: list[tuple[bytes, dict[str, str]]] = []

    def publish(self, topic: str, data: bytes, **attributes: str) -> Future[str]:
        self.messages.append((data, attributes))
        done: Future[str] = Future()
        done.set_result(str(len(self.messages)))
        return done


class _Worker:
    def __init__(self) -> None:
        self.ran: list[SketchTask] = []
        self.dead: list[SketchTask] = []

    def run_sketch(self, task: SketchTask) -> bool:
        self.ran.append(task)
        get_logger("sketchgen.test").info("drawing")
        return True

    def fail_undeliverable(self, task: SketchTask, deliveries: int | None) -> bool:
        self.dead.append(task)
        return True


def _push(path: str, data: bytes, attributes: dict[str, str]) -> Request:
    envelope = {"message": {"data": base64.b64encode(data).decode(), "attributes": attributes}}
    return Request(EnvironBuilder(method="POST", path=path, json=envelope).get_environ())


def test_the_trace_crosses_pubsub_in_the_message_attributes(otel: Telemetry) -> None:
    publisher = _Publisher()
    queue = PubSubTaskQueue("projects/p/topics/t", publisher=publisher)
    with telemetry.span("POST /v1/jobs") as root:
        queue.publish([SketchTask(JOB, 0), SketchTask(JOB, 1)])
    publishes = otel.finished("pubsub.publish")
    assert len(publishes) == 2
    assert all(s.parent is not None and s.parent.span_id == root.get_span_context().span_id
               for s in publishes)  # fmt: skip
    worker = _Worker()
    for (data, attributes), published in zip(publisher.messages, publishes, strict=True):
        # The message names its own producer span as the delivery's parent.
        assert attributes["traceparent"].split("-")[2] == format(
            published.get_span_context().span_id, "016x"
        )
        assert handle_sketch_push(_push("/", data, attributes), worker).status_code == 204
    deliveries = otel.finished("sketch_worker.deliver")
    assert len(deliveries) == 2 and len(worker.ran) == 2
    trace_id = root.get_span_context().trace_id
    assert {s.context.trace_id for s in deliveries} == {trace_id}
    assert {s.parent.span_id for s in deliveries if s.parent} == {
        s.get_span_context().span_id for s in publishes
    }
    assert all(s.kind is trace.SpanKind.CONSUMER for s in deliveries)


def test_a_dead_letter_is_a_span_and_counted(otel: Telemetry) -> None:
    data = json.dumps({"job_id": JOB, "index": 3}).encode()
    worker = _Worker()
    response = handle_sketch_push(_push("/dead-letter", data, {}), worker)
    assert response.status_code == 204 and worker.dead == [SketchTask(JOB, 3)]
    (span,) = otel.finished("sketch_worker.dead_letter")
    assert dict(span.attributes or {})["sketchgen.sketch_index"] == 3
    (counted,) = otel.points("sketchgen.dead_letters")
    assert counted.value == 1


def test_log_lines_carry_the_trace_cloud_logging_joins_on(otel: Telemetry) -> None:
    # The JSON lines the cloud gets (SKETCHGEN_LOG_FORMAT=json), into a buffer of the test's.
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(_JsonFormatter())
    handler.addFilter(_ContextFilter())
    root = logging.getLogger("sketchgen")
    level = root.level
    root.setLevel(logging.INFO)
    root.addHandler(handler)
    fields = telemetry.join_logs_to_traces("my-project")
    try:
        log = get_logger("sketchgen.test")
        log.info("outside")
        with telemetry.span("work") as current:
            log.info("inside")
    finally:
        remove_record_fields(fields)
        root.removeHandler(handler)
        root.setLevel(level)
    outside, inside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert "logging.googleapis.com/trace" not in outside
    context = current.get_span_context()
    assert inside["logging.googleapis.com/trace"] == (
        f"projects/my-project/traces/{context.trace_id:032x}"
    )
    assert inside["logging.googleapis.com/spanId"] == f"{context.span_id:016x}"
    assert inside["logging.googleapis.com/trace_sampled"] is True


def test_an_open_stream_is_counted_and_its_span_ends_once(otel: Telemetry) -> None:
    class _Job:
        job_id = JOB
        traceparent = None

    with telemetry.span("POST /v1/jobs"):
        parent = telemetry.traceparent()
    _Job.traceparent = parent
    close = telemetry.open_stream(_Job(), "alice")
    (opened,) = otel.points("sketchgen.streams.active")
    assert opened.value == 1
    close()
    close()
    (stream,) = otel.finished("stream")
    assert parent is not None and stream.parent is not None
    assert f"{stream.parent.span_id:016x}" == parent.split("-")[2]
    (closed,) = otel.points("sketchgen.streams.active")
    assert closed.value == 0


def test_the_waterfall_reads_back_what_the_file_exporter_wrote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "generate"}))
    provider.add_span_processor(SimpleSpanProcessor(FileSpanExporter(tmp_path, "generate")))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("POST /v1/jobs", attributes={"sketchgen.job_id": JOB}):
        with tracer.start_as_current_span("pubsub.publish"):
            pass
        with tracer.start_as_current_span("finalize", attributes={"sketchgen.job_status": "done"}):
            pass
    with tracer.start_as_current_span("another job", attributes={"sketchgen.job_id": "x"}):
        pass
    written = sum(p.read_text().count("\n") for p in tmp_path.glob("generate-*.jsonl"))
    spans = list(read_spans(tmp_path))
    assert len(spans) == 4 and written == 4  # one OTLP request a line, as each span ended
    ((_, job_spans),) = job_traces(spans, JOB).items()
    lines = waterfall(job_spans)
    assert [row.split("  generate")[0].rstrip() for row in lines] == [
        "POST /v1/jobs",
        "  pubsub.publish",
        "  finalize",
    ]
    assert "status=done" in lines[2]
    assert cli_main(["trace", JOB, "--dir", str(tmp_path)]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert shown[0].startswith("trace ") and "3 spans from generate" in shown[0]
    assert cli_main(["trace", "20000101_000000-000000", "--dir", str(tmp_path)]) == 2


def test_an_unknown_telemetry_setting_is_refused_naming_the_variable() -> None:
    from sketchgen.adapters.otel_export import install
    from sketchgen.errors import ConfigError

    with pytest.raises(ConfigError) as refused:
        install("jaeger://somewhere", project=None)
    assert refused.value.field == "SKETCHGEN_TELEMETRY"
    assert install("", project=None) is False  # nothing to export: nothing installed
