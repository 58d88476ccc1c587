"""The error tree says what each surface makes of an error; HTTP maps it in one place."""

from __future__ import annotations

import json

import pytest
from werkzeug.test import Client

from sketchgen.api.auth import AuthError, DevAuthenticator
from sketchgen.api.http import Api
from sketchgen.errors import (
    ConfigError,
    ConflictError,
    InputError,
    ModelError,
    NotFoundError,
    SketchgenError,
    StorageError,
    TransientModelError,
    UnknownStyleError,
)

JOB = "/v1/jobs/20250101_120000-abcdef"
ALICE = {"Authorization": "Bearer dev:alice"}


class _RaisingSubmission:
    """Job reads that all fail with the given error."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def get_job(self, owner_uid: str, job_id: str) -> object:
        raise self.error


class _Raising:
    """A service whose every read fails with the given error."""

    def __init__(self, error: Exception) -> None:
        self.submission = _RaisingSubmission(error)


@pytest.mark.parametrize(
    ("error", "status", "body"),
    [
        (InputError("brief must not be empty", field="brief"), 422,
         {"code": "invalid_argument", "message": "brief must not be empty", "field": "brief"}),
        (ConfigError("invalid seed", field="seed"), 422,
         {"code": "invalid_argument", "message": "invalid seed", "field": "seed"}),
        (UnknownStyleError("nope", ["a"]), 422,
         {"code": "unknown_style", "message": "unknown style 'nope' (allowed: a)",
          "field": "style_id"}),
        (NotFoundError("no job 'x'"), 404,
         {"code": "not_found", "message": "no job 'x'", "field": None}),
        (ConflictError("key reused"), 409,
         {"code": "conflict", "message": "key reused", "field": "Idempotency-Key"}),
        (StorageError("firestore: /secret/path"), 503,
         {"code": "storage_error", "message": "storage is unavailable, retry", "field": None}),
        (ModelError("sdk said /secret"), 500,
         {"code": "internal", "message": "internal error", "field": None}),
        (TransientModelError("503 from sdk", status=503), 500,
         {"code": "internal", "message": "internal error", "field": None}),
        (SketchgenError("boom"), 500,
         {"code": "internal", "message": "internal error", "field": None}),
        (AuthError("token expired"), 401,
         {"code": "unauthenticated", "message": "token expired", "field": None}),
    ],
)  # fmt: skip
def test_http_status_and_body_come_from_the_tree(
    error: SketchgenError, status: int, body: dict[str, object]
) -> None:
    api = Api(lambda: _Raising(error), DevAuthenticator)
    response = Client(api).get(JOB, headers=ALICE)
    assert response.status_code == status
    assert json.loads(response.get_data()) == {"error": body}
    assert ("WWW-Authenticate" in response.headers) == (status == 401)


@pytest.mark.parametrize(
    ("cls", "exit_code"),
    [
        (SketchgenError, 1), (InputError, 2), (ConfigError, 2), (UnknownStyleError, 2),
        (NotFoundError, 2), (ConflictError, 1), (ModelError, 1), (StorageError, 1),
    ],
)  # fmt: skip
def test_cli_exit_codes_come_from_the_tree(cls: type[SketchgenError], exit_code: int) -> None:
    assert cls.exit_code == exit_code


def test_the_docstring_draws_every_class() -> None:
    import sketchgen.errors as errors

    assert errors.__doc__ is not None
    for name in errors.__all__:
        assert name in errors.__doc__, name


def test_one_limit_error_of_two_kinds() -> None:
    """A rate or budget says when to retry (429, exit 1); a capacity cannot be waited out
    (409, exit 2): one class, told apart by ``retry_after_s``."""
    from sketchgen.errors import LimitError

    budget = LimitError("budget_exhausted", "no images left today", field="num_images",
                        retry_after_s=3600)  # fmt: skip
    capacity = LimitError("limit_exceeded", "at most 20 styles a user", field="styles")
    assert (budget.http_status, budget.exit_code, budget.retry_after_s) == (429, 1, 3600)
    assert (capacity.http_status, capacity.exit_code, capacity.retry_after_s) == (409, 2, None)
    assert capacity.public() == ("limit_exceeded", "at most 20 styles a user", "styles")
    import sketchgen.errors

    assert not hasattr(sketchgen.errors, "LimitExceededError")
