"""One error tree for sketchgen.

Everything sketchgen raises on purpose derives from :class:`SketchgenError`; SDK, HTTP and
storage errors are translated into it at the adapter edge. Each class says what every surface
makes of it, so each surface maps errors in one place: ``http_status`` (the HTTP API, in
``Api.handle``), ``exit_code`` (the CLI, in ``cli.main``) and ``code`` (the JSON error body,
``{"error": {code, message, field}}``). A 500 is reported as ``internal`` whatever the class.

::

    SketchgenError                 500 / exit 1   internal (message not shown over HTTP)
    ├── InputError                 422 / exit 2   invalid_argument; names ``field``
    │   ├── ConfigError            422 / exit 2   an invalid GenerationConfig / request value
    │   ├── UnknownStyleError      422 / exit 2   unknown_style (lists the ids there are)
    │   ├── StyleDefinitionError   422 / exit 2   a style.json that does not hold together
    │   └── ImageRejectedError     413/415/422    an uploaded reference image (per instance)
    ├── RequestError               4xx / exit 2   the HTTP request itself (media type, size,
    │                                              JSON, route): status and code per instance
    ├── AuthenticationError        401 / exit 2   unauthenticated (no or a bad credential)
    ├── NotFoundError              404 / exit 2   a job (or blob) that is not there, or not yours
    ├── ReadOnlyStyleError         403 / exit 2   read_only: a built-in style is not editable
    ├── ConflictError              409 / exit 1   an Idempotency-Key reused with another body
    ├── NotEntitledError           403 / exit 2   not_entitled: outside the caller's plan
    │                                              (names ``field``: model, image_size)
    ├── LimitError                 429 / exit 1   budget_exhausted | too_many_active_jobs |
    │                                              too_many_streams: ``retry_after_s`` says when
    │                              409 / exit 2   limit_exceeded (styles a user, references a
    │                                              style): no ``retry_after_s``, time won't help
    ├── ModelError                 500 / exit 1   one sketch failed at the image model
    │   ├── NoImageError                          answered without an image (finish_reason)
    │   ├── OffStyleError                         breaks the visual rules even as line art
    │   ├── ModelNotFoundError                    the API does not know the model
    │   ├── ModelRequestError                     any other 4xx: permanent, never retried
    │   └── TransientModelError                   429 / 500 / 503 / timeout: retried
    └── StorageError               503 / exit 1   storage_error: a blob or job store failed
                                                  (message not shown over HTTP)

A pydantic ``ValidationError`` becomes one of these through :func:`first_problem` (the
field and the validator's own words), in one place for every surface.

``api.auth.AuthError`` is an :class:`AuthenticationError`; ``api.auth.AuthUnavailableError``
(Google's signing keys unreachable) is a 503 ``unavailable``, so clients do not sign out.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = [
    "AuthenticationError",
    "ConfigError",
    "ConflictError",
    "ImageRejectedError",
    "InputError",
    "LimitError",
    "ModelError",
    "ModelNotFoundError",
    "ModelRequestError",
    "NoImageError",
    "NotEntitledError",
    "NotFoundError",
    "OffStyleError",
    "ReadOnlyStyleError",
    "RequestError",
    "SketchgenError",
    "StorageError",
    "StyleDefinitionError",
    "TransientModelError",
    "UnknownStyleError",
    "first_problem",
]


class SketchgenError(Exception):
    """Base of every error sketchgen raises on purpose."""

    code = "internal"
    http_status = 500
    exit_code = 1
    # What an API client is told instead of the message where the message may carry
    # internals (paths, SDK or database text); None: the message is written for the client.
    public_message: str | None = "internal error"
    field: str | None = None

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""

    def public(self) -> tuple[str, str, str | None]:
        """``(code, message, field)`` as a client of the HTTP API is told them."""
        if self.public_message is not None:
            return ("internal" if self.http_status == 500 else self.code), self.public_message, None
        return self.code, self.message, self.field


class InputError(SketchgenError):
    """Input that can never succeed as given. ``field`` names the culprit."""

    code = "invalid_argument"
    http_status = 422
    exit_code = 2
    public_message = None

    def __init__(
        self, message: str, *, field: str | None = None, allowed: Iterable[object] | None = None
    ) -> None:
        self.field = field
        self.allowed = tuple(allowed) if allowed is not None else None
        if self.allowed:
            message = f"{message} (allowed: {', '.join(map(str, self.allowed))})"
        super().__init__(message)


class ConfigError(InputError):
    """An invalid generation setting."""


class UnknownStyleError(InputError):
    code = "unknown_style"

    def __init__(self, style_id: str, known: Iterable[str]) -> None:
        super().__init__(f"unknown style {style_id!r}", field="style_id", allowed=sorted(known))
        self.style_id = style_id


class StyleDefinitionError(InputError):
    """A style folder whose style.json is missing, malformed or inconsistent."""


class RequestError(SketchgenError):
    """An HTTP request refused before it reaches the service (wrong media type, too large,
    malformed JSON, no such route); the HTTP layer decides the status and code."""

    exit_code = 2
    public_message = None

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.http_status, self.code, self.field = status, code, field


class AuthenticationError(SketchgenError):
    code = "unauthenticated"
    http_status = 401
    exit_code = 2
    public_message = None


class NotFoundError(SketchgenError):
    code = "not_found"
    http_status = 404
    exit_code = 2
    public_message = None


class ConflictError(SketchgenError):
    """Only ever an Idempotency-Key reused with another request, hence the field."""

    code = "conflict"
    http_status = 409
    public_message = None
    field = "Idempotency-Key"


class NotEntitledError(SketchgenError):
    """The request asks for something the caller's plan does not include."""

    code = "not_entitled"
    http_status = 403
    exit_code = 2
    public_message = None

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


class LimitError(SketchgenError):
    """A limit is reached: nothing was done. The one limit error, of two kinds:

    - a rate or a budget (``retry_after_s`` given): trying again later can succeed, and
      ``retry_after_s`` says when (the HTTP API sends it as ``Retry-After``): 429, exit 1;
    - a capacity (styles a user, references a style; no ``retry_after_s``): only removing
      something frees room, so it is the caller's to fix like bad input: 409, exit 2.
    """

    public_message = None

    def __init__(
        self, code: str, message: str, *, field: str, retry_after_s: int | None = None
    ) -> None:
        super().__init__(message)
        self.code, self.field, self.retry_after_s = code, field, retry_after_s
        self.http_status = 429 if retry_after_s is not None else 409
        self.exit_code = 1 if retry_after_s is not None else 2


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
    http_status = 503
    public_message = "storage is unavailable, retry"


# -- user styles (issue 16) ------------------------------------------------------------------


class ImageRejectedError(InputError):
    """An uploaded reference image refused before anything is stored: too large (413), not a
    PNG/JPEG/WebP by content (415), or undecodable (422). Status and code per instance."""

    def __init__(self, status: int, code: str, message: str, field: str | None = "image") -> None:
        super().__init__(message, field=field)
        self.http_status, self.code = status, code


class ReadOnlyStyleError(SketchgenError):
    """A built-in style cannot be changed or deleted through the API."""

    code = "read_only"
    http_status = 403
    exit_code = 2
    public_message = None
    field = "style_id"


def first_problem(error: Any) -> tuple[str, str]:
    """``(field, message)`` of a pydantic ``ValidationError``'s first problem, in our words:
    the dotted field (``""`` if none) and the validator's own message, without pydantic's
    ``"Value error, "`` / ``"Assertion failed, "`` in front. The one translation, used by the
    settings, the configs, the HTTP bodies and the CLI."""
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"])
    message = str(first["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return field, message
