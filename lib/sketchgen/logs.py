"""Structured logs: every line carries the job id and sketch index in scope.

``SKETCHGEN_LOG_FORMAT=json`` (set in the cloud) writes one JSON object per line in the shape
Cloud Logging understands (``severity``, ``message``); otherwise lines are for people.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["configure_logging", "get_logger", "log_context"]

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


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.sketchgen = _context.get()
        return True


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


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{k}={v}" for k, v in getattr(record, "sketchgen", {}).items())
        line = super().format(record)
        return f"{line} {fields}" if fields else line


# A library logs to its callers' handlers, never to Python's last-resort stderr handler: the
# CLI and the library report a failed sketch in their own words (once), not also as a raw
# WARNING line. The composition root (service, functions, serve) installs real handlers.
logging.getLogger("sketchgen").addHandler(logging.NullHandler())


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Idempotent; called by the composition root (from the settings), never at import."""
    root = logging.getLogger("sketchgen")
    root.setLevel(level.upper())
    if any(getattr(h, "_sketchgen", False) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler._sketchgen = True  # type: ignore[attr-defined]
    use_json = fmt == "json"
    handler.setFormatter(
        _JsonFormatter() if use_json else _TextFormatter("%(levelname)s %(name)s: %(message)s")
    )
    handler.addFilter(_ContextFilter())
    root.addHandler(handler)
    root.propagate = False


def get_logger(name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    if not any(isinstance(f, _ContextFilter) for f in logger.filters):
        logger.addFilter(_ContextFilter())
    return logger
