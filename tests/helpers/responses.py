"""``json_of``: the JSON object of a werkzeug test response, typed.

``TestResponse.json`` is ``Any | None`` to mypy; a test that indexes it would need a cast or
an ignore on every line. This asserts the body is an object (which the API always answers)
and says what came instead when it is not.
"""

from __future__ import annotations

from typing import Any

from werkzeug.test import TestResponse

__all__ = ["json_of"]


def json_of(response: TestResponse) -> dict[str, Any]:
    body = response.get_json()
    assert isinstance(body, dict), f"{response.status}: {response.get_data(as_text=True)[:500]}"
    return body
