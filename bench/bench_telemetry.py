"""Telemetry: what the spans and metrics of one sketch add to its path (docs/decisions/0030).

One sketch's instrumented path in this process, without the work it wraps: a publish span
with its ``traceparent`` injected, the delivery span continuing it, the model call through
``TracedImageModel`` (a model that answers at once), the Storage write through
``TracedBlobStore`` (a store that keeps nothing), and one JSON log line inside the delivery.
Three ways: no SDK installed (the API's no-ops, the library and CLI), the cloud's batch
processor with an exporter that drops what it gets (the export runs off the request's thread
in the cloud), and make dev's synchronous OTLP JSON lines file. Compare with a model call
(10-40 s) and the Firestore writes of a sketch (tens of ms): the figures are microseconds.
"""

from __future__ import annotations

import io
import logging
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SKETCHES, WARM_UP = 2_000, 200


def _path(rounds: int) -> list[float]:
    from sketchgen import telemetry
    from sketchgen.adapters.traced import TracedBlobStore, TracedImageModel
    from sketchgen.generate.base import ImageModelAdapter
    from sketchgen.logs import get_logger, log_context
    from sketchgen.ports import ImageRequest, ImageResponse
    from sketchgen.schemas import Variation

    class Instant(ImageModelAdapter):
        @property
        def name(self) -> str:
            return "instant"

        def generate_image(self, request: ImageRequest) -> ImageResponse:
            return ImageResponse(b"png", "image/png", request.model, "STOP")

    class Nowhere:
        def put(self, key: str, data: bytes, content_type: str) -> None:
            pass

        def get(self, key: str) -> bytes:
            return b""

        def exists(self, key: str) -> bool:
            return False

        def signed_url(self, key: str, *, expires_s: int) -> str | None:
            return None

    model = TracedImageModel(Instant())
    blobs = TracedBlobStore(Nowhere())
    log = get_logger("sketchgen.bench")
    variation = Variation(index=0, layout="close_up", exaggeration="subtle")
    request = ImageRequest(0, "p", "b", variation, "gemini-2.5-flash-image")
    times = []
    for i in range(rounds):
        started = time.perf_counter()
        with telemetry.span("pubsub.publish", job_id="20261204_120000-abcdef", sketch=0):
            attributes = telemetry.inject({})
        with (
            log_context(job_id="20261204_120000-abcdef", sketch=0),
            telemetry.delivery(attributes, dead_letter=False, attempt=1),
        ):
            model.generate_image(request)
            blobs.put("jobs/x/sketch_0.png", b"png", "image/png")
            log.info("sketch %d drawn", i)
        times.append((time.perf_counter() - started) * 1e6)
    return times[WARM_UP:]


class _Drop:
    def export(self, spans: Sequence[Any]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def run() -> dict[str, Any]:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    from sketchgen import telemetry
    from sketchgen.adapters.otel_export import FileSpanExporter
    from sketchgen.logs import _ContextFilter, _JsonFormatter

    # JSON log lines into memory, with the trace fields (what the cloud writes to stderr).
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(_JsonFormatter())
    handler.addFilter(_ContextFilter())
    root = logging.getLogger("sketchgen")
    root.setLevel(logging.INFO)
    root.addHandler(handler)
    fields = telemetry.join_logs_to_traces("bench")
    results: dict[str, Any] = {"sketches": SKETCHES}
    try:
        results["none"] = _summary(_path(SKETCHES + WARM_UP))
        cloud = TracerProvider()
        # _Drop is a duck-typed SpanExporter: the SDK is imported only once the bench runs.
        # The ignore below: a duck-typed exporter that drops spans
        cloud.add_span_processor(BatchSpanProcessor(_Drop()))  # type: ignore[arg-type]
        meters = MeterProvider(metric_readers=[InMemoryMetricReader()])
        with telemetry.local_providers(cloud, meters):
            results["batch"] = _summary(_path(SKETCHES + WARM_UP))
        with tempfile.TemporaryDirectory() as folder:
            dev = TracerProvider()
            dev.add_span_processor(SimpleSpanProcessor(FileSpanExporter(Path(folder), "bench")))
            with telemetry.local_providers(dev, meters):
                results["file"] = _summary(_path(SKETCHES + WARM_UP))
        cloud.shutdown()
    finally:
        from sketchgen.logs import remove_record_fields

        remove_record_fields(fields)
        root.removeHandler(handler)
    return results


def _summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "p50_us": round(statistics.median(times), 1),
        "p99_us": round(ordered[round(0.99 * (len(ordered) - 1))], 1),
    }


def markdown(results: dict[str, Any]) -> str:
    rows = [
        "| telemetry | p50 per sketch | p99 per sketch |",
        "|---|---|---|",
    ]
    labels = {
        "none": "none installed (API no-ops)",
        "batch": "SDK, batch processor (the cloud's; export off the thread)",
        "file": "SDK, OTLP JSON lines file, written as each span ends (make dev)",
    }
    for key, label in labels.items():
        figures = results[key]
        rows.append(f"| {label} | {figures['p50_us']} µs | {figures['p99_us']} µs |")
    return (
        f"Method: `bench/bench_telemetry.py` — one sketch's instrumented path (publish span and "
        f"`traceparent`, delivery span, traced model call and Storage write with the work "
        f"itself taken out, one JSON log line with the trace fields), {results['sketches']} "
        "times after a warm-up, in one process. The machine is shared with other work while "
        "measuring, so treat the figures as an upper bound. Against a model call of 10-40 s "
        "and a sketch's Firestore writes, what tracing adds is noise.\n\n" + "\n".join(rows)
    )
