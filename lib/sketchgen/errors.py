"""One error tree for sketchgen.

Everything the library raises on purpose derives from :class:`SketchgenError`;
SDK, HTTP and storage errors are translated into it at the adapter edge.

::

    SketchgenError
    ├── InputError                 bad input: CLI exit 2, HTTP 4xx; names ``field``
    │   ├── ConfigError            an invalid GenerationConfig / request value
    │   ├── UnknownStyleError      no style with that id (lists the ids there are)
    │   └── StyleDefinitionError   a style.json that does not hold together
    ├── NotFoundError              a job (or blob) that is not there, or not yours
    ├── ConflictError              e.g. an Idempotency-Key reused with another body
    ├── ModelError                 one sketch failed at the image model
    │   ├── NoImageError           answered without an image (finish_reason says why)
    │   ├── OffStyleError          an image that breaks the visual rules even as line art
    │   ├── ModelNotFoundError     the API does not know the model (lists alternatives)
    │   ├── ModelRequestError      any other 4xx: permanent, never retried
    │   └── TransientModelError    429 / 500 / 503 / timeout: retried with backoff
    └── StorageError               a blob or job store failed
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = [
    "ConfigError",
    "ConflictError",
    "InputError",
    "ModelError",
    "ModelNotFoundError",
    "ModelRequestError",
    "NoImageError",
    "NotFoundError",
    "OffStyleError",
    "SketchgenError",
    "StorageError",
    "StyleDefinitionError",
    "TransientModelError",
    "UnknownStyleError",
]


class SketchgenError(Exception):
    """Base of every error sketchgen raises on purpose."""

    code = "internal"


class InputError(SketchgenError):
    """Input that can never succeed as given. ``field`` names the culprit."""

    code = "invalid_argument"

    def __init__(
        self, message: str, *, field: str | None = None, allowed: Iterable[object] | None = None
    ) -> None:
        self.field = field
        self.allowed = tuple(allowed) if allowed is not None else None
        if self.allowed:
            message = f"{message} (allowed: {', '.join(map(str, self.allowed))})"
        super().__init__(message)

    @property
    def message(self) -> str:
        return str(self.args[0])


class ConfigError(InputError):
    """An invalid generation setting."""


class UnknownStyleError(InputError):
    code = "unknown_style"

    def __init__(self, style_id: str, known: Iterable[str]) -> None:
        super().__init__(f"unknown style {style_id!r}", field="style_id", allowed=sorted(known))
        self.style_id = style_id


class StyleDefinitionError(InputError):
    """A style folder whose style.json is missing, malformed or inconsistent."""


class NotFoundError(SketchgenError):
    code = "not_found"


class ConflictError(SketchgenError):
    code = "conflict"


class ModelError(SketchgenError):
    """A sketch the image model could not make. ``permanent`` errors are not retried."""

    code = "model_error"
    permanent = True

    def __init__(self, message: str, *, finish_reason: str | None = None) -> None:
        super().__init__(message)
        self.finish_reason = finish_reason


class NoImageError(ModelError):
    """The model answered, but without an image (safety block, NO_IMAGE, text only…)."""

    code = "no_image"


class OffStyleError(ModelError):
    """The model's image breaks the visual rules and the style guard could not redraw it.

    Permanent: asking the same way again is not going to change the picture (the pipeline
    asks once more with a stricter prompt, like a missing image). ``qa`` holds the figures.
    """

    code = "off_style"

    def __init__(self, message: str, *, qa: dict[str, Any] | None = None) -> None:
        super().__init__(message, finish_reason="OFF_STYLE")
        self.qa = qa or {}


class ModelNotFoundError(ModelError):
    code = "model_not_found"

    def __init__(self, model: str, alternatives: Iterable[str]) -> None:
        alts = ", ".join(alternatives)
        super().__init__(f"model {model!r} was not found by the API; known models: {alts}")
        self.model = model


class ModelRequestError(ModelError):
    code = "model_request_rejected"


class TransientModelError(ModelError):
    """Worth retrying. ``retry_after`` is the server's own hint (RetryInfo), in seconds."""

    code = "model_unavailable"
    permanent = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        finish_reason: str | None = None,
    ) -> None:
        super().__init__(message, finish_reason=finish_reason)
        self.status = status
        self.retry_after = retry_after


class StorageError(SketchgenError):
    code = "storage_error"
