"""Structured logs: every line carries the job id and sketch index in scope.

``SKETCHGEN_LOG_FORMAT=json`` (set in the cloud) writes one JSON object per line in the shape
Cloud Logging understands (``severity``, ``message``); otherwise lines are for people. Inside
a span a JSON line also carries the trace and span ids in the fields Cloud Logging joins on
(:func:`add_record_fields`, installed by :mod:`sketchgen.telemetry`).

Our loggers stay enabled whatever configures logging after them: functions-framework, with
``LOG_EXECUTION_ID=true`` (Cloud Functions sets it), calls ``logging.config.dictConfig`` after it
imported ``main.py``, which disables every logger that exists by then, ours included.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = [
    "add_record_fields",
    "configure_logging",
    "current_log_context",
    "get_logger",
    "log_context",
    "remove_record_fields",
]

# An immutable default: each log_context() binds a new dict, never mutates a shared one.
_EMPTY: dict[str, Any] = {}
_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar(
    "sketchgen_log_context",
    default=_EMPTY,
)


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    token = _context.set({**_context.get(), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def current_log_context() -> dict[str, Any]:
    """The fields bound by the enclosing :func:`log_context` blocks (job id, sketch index)."""
    return _context.get()


# Fields computed when a line is logged, on the thread that logs it (the trace and span ids).
_record_fields: list[Callable[[], dict[str, Any]]] = []


def add_record_fields(source: Callable[[], dict[str, Any]]) -> None:
    """Add ``source()``'s fields to every line from now on (idempotent per source)."""
    if source not in _record_fields:
        _record_fields.append(source)


def remove_record_fields(source: Callable[[], dict[str, Any]]) -> None:
    if source in _record_fields:
        _record_fields.remove(source)


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        fields = _context.get()
        for source in _record_fields:
            fields = {**fields, **source()}
        record.sketchgen = fields
        return True


class _StaysEnabled(logging.Logger):
    """A logger ``dictConfig(disable_existing_loggers=True)`` cannot disable: the framework's
    configuration is about its own root handler, and must not silence ours."""

    @property
    def disabled(self) -> bool:
        return False

    @disabled.setter
    def disabled(self, value: bool) -> None:
        pass


def _keep_enabled(logger: logging.Logger) -> logging.Logger:
    if type(logger) is logging.Logger:
        logger.__class__ = _StaysEnabled
    return logger


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
            **getattr(record, "sketchgen", {}),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


_CLOUD_LOGGING_FIELDS = "logging.googleapis.com/"


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(
            f"{k}={v}"
            for k, v in getattr(record, "sketchgen", {}).items()
            if not k.startswith(_CLOUD_LOGGING_FIELDS)  # for Cloud Logging, not for people
        )
        line = super().format(record)
        return f"{line} {fields}" if fields else line


# A library logs to its callers' handlers, never to Python's last-resort stderr handler: the
# CLI and the library report a failed sketch in their own words (once), not also as a raw
# WARNING line. The composition root (service, functions, serve) installs real handlers.
logging.getLogger("sketchgen").addHandler(logging.NullHandler())


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Idempotent; called by the composition root (from the settings), never at import."""
    root = _keep_enabled(logging.getLogger("sketchgen"))
    root.setLevel(level.upper())
    if any(getattr(h, "_sketchgen", False) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    # The ignore below: a marker attribute on a stdlib handler, to find ours again
    handler._sketchgen = True  # type: ignore[attr-defined]
    use_json = fmt == "json"
    handler.setFormatter(
        _JsonFormatter() if use_json else _TextFormatter("%(levelname)s %(name)s: %(message)s")
    )
    handler.addFilter(_ContextFilter())
    root.addHandler(handler)
    root.propagate = False


def get_logger(name: str) -> logging.Logger:
    logger = _keep_enabled(logging.getLogger(name))
    if not any(isinstance(f, _ContextFilter) for f in logger.filters):
        logger.addFilter(_ContextFilter())
    return logger
