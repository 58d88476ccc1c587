"""Where traces and metrics go (``SKETCHGEN_TELEMETRY``), installed once per instance.

- ``cloud``: Cloud Trace (``opentelemetry-exporter-gcp-trace``) and Cloud Monitoring
  (``opentelemetry-exporter-gcp-monitoring``, metrics under ``workload.googleapis.com/``), on a
  resource detected from the runtime (Cloud Run / Cloud Functions: one series per instance).
- ``file://DIR`` (``make dev``): OTLP JSON lines, one ``ExportTraceServiceRequest`` a line, in
  ``DIR/traces/<service>-<pid>.jsonl``, and the metrics as JSON lines in
  ``DIR/metrics/<service>-<pid>.jsonl``; ``sketchgen trace JOB_ID`` reads the traces back.
- empty: nothing is exported (the API stays a no-op).

Every span is recorded (``ALWAYS_ON``), whatever the caller's ``traceparent`` says: a job costs
far more than its dozen spans. Exporters that hold a gRPC channel are built on their first
export, in the serving process: gunicorn forks its workers after ``main.py`` is imported, and a
channel made before the fork does not survive it (the SDK restarts its own threads after a fork).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from sketchgen.errors import ConfigError
from sketchgen.logs import get_logger

__all__ = ["FileSpanExporter", "install", "otlp_json"]

log = get_logger(__name__)

_installed = False
_lock = threading.Lock()


def install(export: str, *, project: str | None, service: str = "sketchgen") -> bool:
    """Install the SDK with the exporters ``export`` names, for ``service`` (the function
    this instance runs); once per process. False: nothing to export."""
    global _installed
    if not export:
        return False
    with _lock:
        if _installed:
            return True
        from opentelemetry import metrics, trace
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
        from opentelemetry.sdk.trace.sampling import ALWAYS_ON

        from sketchgen.telemetry import join_logs_to_traces

        name = service
        if export == "cloud":
            resource = _cloud_resource(name)
            tracer = TracerProvider(resource=resource, sampler=ALWAYS_ON)
            tracer.add_span_processor(BatchSpanProcessor(_Deferred(_cloud_trace(project))))
            reader = PeriodicExportingMetricReader(
                _DeferredMetrics(_cloud_monitoring(project)), export_interval_millis=60_000
            )
        elif export.startswith("file://"):
            from opentelemetry.sdk.resources import Resource

            folder = Path(export.removeprefix("file://"))
            resource = Resource.create({"service.name": name})
            tracer = TracerProvider(resource=resource, sampler=ALWAYS_ON)
            # Written as each span ends: `sketchgen trace` sees a job as soon as it is done.
            tracer.add_span_processor(
                SimpleSpanProcessor(FileSpanExporter(folder / "traces", name))
            )
            reader = PeriodicExportingMetricReader(
                FileMetricExporter(folder / "metrics", name), export_interval_millis=5_000
            )
        else:
            raise ConfigError(
                f"SKETCHGEN_TELEMETRY={export!r}: expected cloud, file://DIR or empty",
                field="SKETCHGEN_TELEMETRY",
            )
        trace.set_tracer_provider(tracer)
        metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=[reader]))
        join_logs_to_traces(project)
        _installed = True
        return True


def _cloud_resource(name: str) -> Any:
    from opentelemetry.resourcedetector.gcp_resource_detector import GoogleCloudResourceDetector
    from opentelemetry.sdk.resources import Resource, get_aggregated_resources

    return get_aggregated_resources(
        [GoogleCloudResourceDetector(raise_on_error=False)],
        initial_resource=Resource.create({"service.name": name}),
    )


def _cloud_trace(project: str | None) -> Callable[[], Any]:
    def build() -> Any:
        from opentelemetry.exporter.cloud_trace import CloudTraceSpanExporter

        # The ignore below: the Cloud Trace exporter is unannotated
        return CloudTraceSpanExporter(project_id=project)  # type: ignore[no-untyped-call]

    return build


def _cloud_monitoring(project: str | None) -> Callable[[], Any]:
    def build() -> Any:
        from opentelemetry.exporter.cloud_monitoring import CloudMonitoringMetricsExporter

        return CloudMonitoringMetricsExporter(project_id=project)

    return build


# -- exporters built on first use -----------------------------------------------------------------


class _Deferred(SpanExporter):
    """A span exporter made in the process that exports (after gunicorn's fork)."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build
        self._exporter: Any = None

    def export(self, spans: Sequence[Any]) -> Any:
        if self._exporter is None:
            self._exporter = self._build()
        return self._exporter.export(spans)

    def shutdown(self) -> None:
        if self._exporter is not None:
            self._exporter.shutdown()


class _DeferredMetrics(MetricExporter):
    """A metric exporter made in the process that exports; keeps the real one's temporality."""

    def __init__(self, build: Callable[[], Any]) -> None:
        super().__init__()
        self._build = build
        self._exporter: Any = None

    def export(self, metrics_data: Any, timeout_millis: float = 10_000, **kwargs: Any) -> Any:
        if self._exporter is None:
            self._exporter = self._build()
        return self._exporter.export(metrics_data, timeout_millis=timeout_millis, **kwargs)

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        if self._exporter is not None:
            self._exporter.shutdown(timeout_millis=timeout_millis)


# -- make dev: JSON lines files --------------------------------------------------------------------


def _append_line(folder: Path, service: str, line: str) -> None:
    # One file per process (gunicorn workers are processes), opened per write: nothing is
    # shared across the fork, and a line is one write to an O_APPEND file.
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / f"{service}-{os.getpid()}.jsonl").open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")


def _any_value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, (list, tuple)):
        return {"arrayValue": {"values": [_any_value(v) for v in value]}}
    return {"stringValue": str(value)}


def _key_values(attributes: Any) -> list[dict[str, Any]]:
    return [{"key": k, "value": _any_value(v)} for k, v in (attributes or {}).items()]


_KINDS = {"INTERNAL": 1, "SERVER": 2, "CLIENT": 3, "PRODUCER": 4, "CONSUMER": 5}
_STATUS = {"UNSET": 0, "OK": 1, "ERROR": 2}


def otlp_json(spans: Sequence[Any]) -> dict[str, Any]:
    """Spans as an OTLP/JSON ``ExportTraceServiceRequest`` (ids in hex, times in ns strings),
    grouped by resource and instrumentation scope."""
    by_resource: dict[int, tuple[Any, dict[str, tuple[Any, list[dict[str, Any]]]]]] = {}
    for item in spans:
        _, scopes = by_resource.setdefault(id(item.resource), (item.resource, {}))
        scope = item.instrumentation_scope
        key = f"{scope.name if scope else ''}@{scope.version if scope else ''}"
        scopes.setdefault(key, (scope, []))[1].append(_otlp_span(item))
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": _key_values(resource.attributes)},
                "scopeSpans": [
                    {
                        "scope": {"name": scope.name, "version": scope.version or ""}
                        if scope
                        else {},
                        "spans": encoded,
                    }
                    for scope, encoded in scopes.values()
                ],
            }
            for resource, scopes in by_resource.values()
        ]
    }


def _otlp_span(item: Any) -> dict[str, Any]:
    context = item.get_span_context()
    encoded: dict[str, Any] = {
        "traceId": format(context.trace_id, "032x"),
        "spanId": format(context.span_id, "016x"),
        "name": item.name,
        "kind": _KINDS.get(item.kind.name, 0),
        "startTimeUnixNano": str(item.start_time),
        "endTimeUnixNano": str(item.end_time),
        "attributes": _key_values(item.attributes),
        "status": {"code": _STATUS.get(item.status.status_code.name, 0)},
    }
    if item.parent is not None:
        encoded["parentSpanId"] = format(item.parent.span_id, "016x")
    if item.status.description:
        encoded["status"]["message"] = item.status.description
    if item.events:
        encoded["events"] = [
            {
                "name": e.name,
                "timeUnixNano": str(e.timestamp),
                "attributes": _key_values(e.attributes),
            }
            for e in item.events
        ]
    return encoded


class FileSpanExporter(SpanExporter):
    """OTLP JSON lines (the OpenTelemetry Collector file exporter's format), one file per
    process under ``folder``."""

    def __init__(self, folder: Path, service: str) -> None:
        self.folder = folder
        self.service = service

    def export(self, spans: Sequence[Any]) -> Any:
        try:
            _append_line(self.folder, self.service, json.dumps(otlp_json(spans)))
        except OSError as error:
            log.warning("could not write spans: %s", error)
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


class FileMetricExporter(MetricExporter):
    """Each collection as one JSON line (the SDK's ``MetricsData`` JSON), one file per process."""

    def __init__(self, folder: Path, service: str) -> None:
        super().__init__()
        self.folder = folder
        self.service = service

    def export(self, metrics_data: Any, timeout_millis: float = 10_000, **kwargs: Any) -> Any:
        try:
            _append_line(self.folder, self.service, metrics_data.to_json(indent=None))
        except OSError as error:
            log.warning("could not write metrics: %s", error)
            return MetricExportResult.FAILURE
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        pass
