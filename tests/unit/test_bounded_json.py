"""Deep JSON (issue 23, item 5): ``[[[[…]]]]`` in a body, in a bearer token's segments or in a
push envelope is a 4xx naming the problem, never a RecursionError (a 500)."""

from __future__ import annotations

import base64
import json

import pytest
from werkzeug.test import Client

from sketchgen import bounded_json
from sketchgen.adapters.local.blob_store import LocalBlobStore
from sketchgen.adapters.local.job_store import MemoryJobStore
from sketchgen.api.auth import AuthError, FirebaseAuthenticator
from sketchgen.api.http import Api
from sketchgen.api.push import decode_pubsub_data
from sketchgen.bootstrap import assemble
from sketchgen.bounded_json import MAX_JSON_DEPTH, JsonTooDeepError
from sketchgen.styles import StyleRegistry
from tests.helpers.fakes import CollectingQueue, FakeImageModel
from tests.helpers.responses import json_of

DEEP = 1_500


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_depth_is_measured_outside_strings() -> None:
    assert bounded_json.loads('{"a": [[1], {"b": "[[[[[[[[[["}]}', max_depth=3) == {
        "a": [[1], {"b": "[[[[[[[[[["}]
    }
    escaped = '["\\"[[[[[[[[[", 1]'  # an escaped quote does not end the string
    assert bounded_json.loads(escaped, max_depth=1) == ['"[[[[[[[[[', 1]
    with pytest.raises(JsonTooDeepError, match="deeper than 3 levels"):
        bounded_json.loads("[[[[1]]]]", max_depth=3)
    with pytest.raises(JsonTooDeepError):
        bounded_json.loads(b"[" * 100_000)  # unterminated too: refused on depth, not parsed
    assert bounded_json.loads(b"\xef\xbb\xbf[1]") == [1]  # bytes: UTF-8 with a BOM, as json


def test_at_the_limit_parses_and_one_past_is_refused() -> None:
    at_limit = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert bounded_json.loads(at_limit) is not None
    with pytest.raises(ValueError):  # a ValueError: old `except ValueError` handlers hold
        bounded_json.loads("[" + at_limit + "]")


@pytest.fixture
def client(tmp_path: object) -> Client:
    from pathlib import Path

    service = assemble(
        jobs=MemoryJobStore(), blobs=LocalBlobStore(Path(str(tmp_path)) / "b"),
        queue=CollectingQueue(), model=FakeImageModel(), styles=StyleRegistry(),
    )  # fmt: skip
    authenticator = FirebaseAuthenticator("demo-edge", emulator_host="127.0.0.1:9")
    return Client(Api(lambda: service, lambda: authenticator, web_config={"auth": "firebase"}))


def _token(header: bytes, claims: bytes) -> str:
    return f"{_b64(header)}.{_b64(claims)}."


def test_a_deep_body_is_a_400_naming_the_problem(client: Client) -> None:
    from tests.helpers.auth import bearer

    for body in ("[" * DEEP + "]" * DEEP, '{"brief": ' + "[" * DEEP + "]" * DEEP + "}"):
        answer = client.post(
            "/v1/jobs",
            data=body,
            content_type="application/json",
            headers=bearer("alice", "demo-edge"),
        )
        assert answer.status_code == 400, answer.get_data(as_text=True)
        error = json_of(answer)["error"]
        assert error["code"] == "invalid_json" and error["field"] == "body"
        assert f"deeper than {MAX_JSON_DEPTH} levels" in error["message"]


@pytest.mark.parametrize("segment", ["header", "claims"])
def test_a_deep_token_is_a_401_saying_why(client: Client, segment: str) -> None:
    deep = b'{"alg": "RS256", "x": ' + b"[" * DEEP + b"]" * DEEP + b"}"
    plain = json.dumps({"alg": "none"}).encode()
    token = _token(deep, plain) if segment == "header" else _token(plain, deep)
    with pytest.raises(AuthError, match="deeper than"):
        FirebaseAuthenticator("demo-edge", emulator_host="127.0.0.1:9").uid_for(f"Bearer {token}")
    for path in ("/v1/jobs/20260101_000000-abcdef", "/v1/usage", "/v1/styles"):
        answer = client.get(path, headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401, answer.get_data(as_text=True)
        assert "deeper than" in json_of(answer)["error"]["message"]


def test_a_deep_push_message_is_refused_as_malformed() -> None:
    deep = base64.b64encode(b"[" * DEEP + b"]" * DEEP).decode()
    with pytest.raises(ValueError, match="deeper than"):
        decode_pubsub_data(deep)
