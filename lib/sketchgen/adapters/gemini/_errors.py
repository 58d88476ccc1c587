"""The one translation of google-genai (and its HTTP libraries') errors into
:mod:`sketchgen.errors`: SDK errors never leave :mod:`sketchgen.adapters.gemini`."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from typing import Any

from sketchgen.adapters.gemini._client import GeminiClient
from sketchgen.errors import ModelError, ModelNotFoundError, ModelRequestError, TransientModelError

__all__ = ["TRANSIENT_STATUS", "is_transport_error", "retry_delay", "translate_error"]

# What a later attempt can fix: timeouts, quota, and the server's own failures.
TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_DURATION = re.compile(r"^\s*([0-9.]+)s\s*$")
_GEMINI_URL = "https://generativelanguage.googleapis.com"  # the SDK's own default


def retry_delay(details: Any) -> float | None:
    """The ``google.rpc.RetryInfo`` delay in a Google error body, in seconds."""
    error = details.get("error", details) if isinstance(details, dict) else {}
    for detail in error.get("details", []) if isinstance(error, dict) else []:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("RetryInfo"):
            match = _DURATION.match(str(detail.get("retryDelay", "")))
            if match:
                return float(match.group(1))
    return None


def is_transport_error(error: BaseException) -> bool:
    # httpx, httpx2 and aiohttp raise their own timeout/connection types; all are transient.
    module = type(error).__module__.split(".", 1)[0]
    return isinstance(error, (TimeoutError, ConnectionError, asyncio.TimeoutError)) or module in {
        "httpx",
        "httpx2",
        "httpcore",
        "aiohttp",
    }


def translate_error(
    error: Exception,
    model: str,
    *,
    label: str = "",
    known_models: Iterable[str] | None = None,
    client: GeminiClient | None = None,
) -> ModelError:
    """``error`` from a call to ``model`` as a :class:`~sketchgen.errors.ModelError`.

    ``label`` prefixes the message (``"embeddings gemini-embedding-001: "``); with
    ``known_models`` a 404 becomes :class:`~sketchgen.errors.ModelNotFoundError` listing
    them (the image model's names a user can choose from); with ``client`` a network failure
    names the host it could not reach.
    """
    from google.genai import errors

    if isinstance(error, errors.APIError):
        code = int(error.code or 0)
        message = f"{label}{code} {error.status}: {error.message}"
        if code == 404 and known_models is not None:
            return ModelNotFoundError(model, known_models)
        if code in TRANSIENT_STATUS:
            return TransientModelError(message, status=code, retry_after=retry_delay(error.details))
        return ModelRequestError(message)
    if is_transport_error(error):
        return TransientModelError(label + _unreachable(error, client))
    return ModelRequestError(f"{label}unexpected {type(error).__name__} from the Gemini SDK")


def _unreachable(error: BaseException, client: GeminiClient | None) -> str:
    """A network failure in words that say where: the host, never the key or a path."""
    from urllib.parse import urlsplit

    base_url = (client.base_url if client is not None else None) or _GEMINI_URL
    host = urlsplit(base_url).netloc or base_url
    timed_out = isinstance(error, (TimeoutError, asyncio.TimeoutError)) or "Timeout" in (
        type(error).__name__
    )
    if timed_out and client is not None:
        return f"Gemini at {host} did not answer within {client.timeout_s:g} s"
    detail = str(error).strip()
    cause = f"{type(error).__name__}: {detail}" if detail else type(error).__name__
    return f"could not reach Gemini at {host} ({cause})"
