"""``sketchgen trace JOB_ID``: one job's trace as a waterfall, from make dev's OTLP JSON lines.

Reads every ``*.jsonl`` under the traces folder (``generated_outputs/dev/traces``: one file per
function process, written by :mod:`sketchgen.adapters.otel_export`), finds the trace(s) whose
spans carry the job id, and prints each span indented under its parent with its function, its
offset from the trace's start, its duration and a bar::

    POST /v1/jobs                 generate        +0 ms    38 ms  ███
      pubsub.publish              generate        +21 ms    2 ms  ▏
        sketch_worker.deliver     sketch_worker   +40 ms  512 ms    ████████████████
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sketchgen.errors import InputError, NotFoundError

__all__ = [
    "Span",
    "add_trace_command",
    "job_traces",
    "read_spans",
    "run_trace_command",
    "waterfall",
]

JOB_ATTRIBUTE = "sketchgen.job_id"
DEFAULT_DIR = Path("generated_outputs/dev/traces")


@dataclass(frozen=True)
class Span:
    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    service: str
    start_ns: int
    end_ns: int
    attributes: dict[str, Any] = field(default_factory=dict)
    failed: bool = False

    @property
    def duration_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6


def _value(encoded: dict[str, Any]) -> Any:
    for kind in ("stringValue", "boolValue", "doubleValue"):
        if kind in encoded:
            return encoded[kind]
    if "intValue" in encoded:
        return int(encoded["intValue"])
    if "arrayValue" in encoded:
        return [_value(v) for v in encoded["arrayValue"].get("values", [])]
    return None


def _attributes(items: Iterable[dict[str, Any]]) -> dict[str, Any]:
    return {item["key"]: _value(item.get("value", {})) for item in items}


def read_spans(folder: Path) -> Iterator[Span]:
    """Every span in the OTLP JSON lines files under ``folder`` (a torn last line is skipped:
    a process may be writing it)."""
    for path in sorted(folder.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                request = json.loads(line)
            except json.JSONDecodeError:
                continue
            for resource_spans in request.get("resourceSpans", []):
                resource = _attributes(resource_spans.get("resource", {}).get("attributes", []))
                service = str(resource.get("service.name", "?"))
                for scope_spans in resource_spans.get("scopeSpans", []):
                    for span in scope_spans.get("spans", []):
                        yield Span(
                            trace_id=span["traceId"],
                            span_id=span["spanId"],
                            parent_id=span.get("parentSpanId") or None,
                            name=span["name"],
                            service=service,
                            start_ns=int(span["startTimeUnixNano"]),
                            end_ns=int(span["endTimeUnixNano"]),
                            attributes=_attributes(span.get("attributes", [])),
                            failed=span.get("status", {}).get("code") == 2,
                        )


def job_traces(spans: Iterable[Span], job_id: str) -> dict[str, list[Span]]:
    """The traces (by trace id) that hold a span of ``job_id``, each with all its spans."""
    everything = list(spans)
    ids = {s.trace_id for s in everything if s.attributes.get(JOB_ATTRIBUTE) == job_id}
    traces: dict[str, list[Span]] = {trace_id: [] for trace_id in sorted(ids)}
    for span in everything:
        if span.trace_id in traces:
            traces[span.trace_id].append(span)
    return traces


def waterfall(spans: list[Span], *, width: int = 40) -> list[str]:
    """One line per span, depth-first from the root(s), children in start order."""
    if not spans:
        return []
    ids = {s.span_id for s in spans}
    children: dict[str | None, list[Span]] = {}
    for span in spans:
        parent = span.parent_id if span.parent_id in ids else None  # a missing parent: a root
        children.setdefault(parent, []).append(span)
    ordered: list[tuple[int, Span]] = []

    def visit(parent: str | None, depth: int) -> None:
        for span in sorted(children.get(parent, []), key=lambda s: s.start_ns):
            ordered.append((depth, span))
            visit(span.span_id, depth + 1)

    visit(None, 0)
    start = min(s.start_ns for s in spans)
    total = max(max(s.end_ns for s in spans) - start, 1)
    label_width = max(2 * depth + len(span.name) for depth, span in ordered)
    service_width = max(len(s.service) for s in spans)
    lines = []
    for depth, span in ordered:
        offset = min(width - 1, round((span.start_ns - start) * width / total))
        length = max(1, min(width - offset, round((span.end_ns - span.start_ns) * width / total)))
        bar = (" " * offset + "█" * length).ljust(width)
        lines.append(
            f"{('  ' * depth + span.name).ljust(label_width)}  {span.service.ljust(service_width)}"
            f"  +{(span.start_ns - start) / 1e6:7.0f} ms {span.duration_ms:7.0f} ms  {bar}"
            f"{_detail(span)}"
        )
    return lines


def _detail(span: Span) -> str:
    shown = {  # attribute -> label
        "sketchgen.sketch_index": "sketch",
        "gen_ai.response.finish_reason": "finish",
        "sketchgen.cost_usd": "cost",
        "sketchgen.quota_outcome": "quota",
        "sketchgen.job_status": "status",
    }
    parts = [
        f"{label}={span.attributes[key]}" for key, label in shown.items() if key in span.attributes
    ]
    if span.failed:
        parts.append("ERROR")
    return ("  " + " ".join(parts)) if parts else ""


def add_trace_command(commands: Any) -> None:
    trace = commands.add_parser("trace", help="one job's trace as a waterfall (make dev)")
    trace.add_argument("job_id")
    trace.add_argument(
        "--dir", type=Path, default=DEFAULT_DIR, help=f"OTLP JSON lines (default: {DEFAULT_DIR})"
    )


def run_trace_command(args: argparse.Namespace) -> int:
    folder: Path = args.dir
    if not folder.is_dir():
        raise InputError(f"no traces folder {folder} (is make dev running?)", field="--dir")
    traces = job_traces(read_spans(folder), args.job_id)
    if not traces:
        raise NotFoundError(f"no spans of job {args.job_id} under {folder}")
    for trace_id, spans in traces.items():
        services = sorted({s.service for s in spans})
        print(f"trace {trace_id}: {len(spans)} spans from {', '.join(services)}")
        for line in waterfall(spans):
            print(line)
    return 0
