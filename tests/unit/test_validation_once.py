"""One brief, one verdict: the library, the CLI and the HTTP API accept or refuse the same
briefs and instructions with the same message (the limits live once, in sketchgen.schemas)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.test import Client

from sketchgen.adapters.local.blob_store import LocalBlobStore
from sketchgen.adapters.local.job_store import MemoryJobStore
from sketchgen.api.auth import DevAuthenticator
from sketchgen.api.http import Api
from sketchgen.bootstrap import assemble
from sketchgen.cli import main
from sketchgen.errors import InputError
from sketchgen.jobs import JobRequest, RefineRequest
from sketchgen.prompt import PromptCompiler
from sketchgen.schemas import MAX_BRIEF_CHARS, MAX_INSTRUCTION_CHARS
from sketchgen.styles import StyleRegistry
from tests.helpers.fakes import CollectingQueue, FakeImageModel

ALICE = {"Authorization": "Bearer dev:alice"}
STYLE = "loose-ink-mascot"
REFUSED = {
    "over-long": "x" * (MAX_BRIEF_CHARS + 1),
    "empty": "",
    "blank": " \t\n ",
}


@pytest.fixture
def http(tmp_path: Path) -> Iterator[Client]:
    service = assemble(
        jobs=MemoryJobStore(), blobs=LocalBlobStore(tmp_path / "blobs"), queue=CollectingQueue(),
        model=FakeImageModel(), styles=StyleRegistry(),
    )  # fmt: skip
    yield Client(Api(lambda: service, DevAuthenticator, web_config={"auth": "dev"}))


def _library(brief: str) -> str | None:
    style = StyleRegistry().get_style(STYLE)
    try:
        PromptCompiler().compile(brief, style)
    except InputError as error:
        assert error.field == "brief"
        return str(error)
    return None


def _http(client: Client, brief: str) -> str | None:
    body = {"brief": brief, "style_id": STYLE, "num_images": 1}
    response = client.post("/v1/jobs", json=body, headers=ALICE)
    if response.status_code == 202:
        return None
    assert response.status_code == 422, response.get_data(as_text=True)
    error = json.loads(response.get_data())["error"]
    assert error["field"] == "brief" and error["code"] == "invalid_argument"
    return str(error["message"])


def _cli(capsys: pytest.CaptureFixture[str], tmp_path: Path, brief: str) -> str | None:
    argv = ["generate", brief, "--offline", "-n", "1", "--output-dir", str(tmp_path / "out")]
    code = main(argv)
    err = capsys.readouterr().err
    if code == 0:
        return None
    assert code == 2 and len(err.strip().splitlines()) == 1
    prefix = "sketchgen: error: brief: "
    assert err.startswith(prefix)
    return err.strip().removeprefix(prefix)


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_bad_brief_is_refused_alike_everywhere(
    case: str, http: Client, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    brief = REFUSED[case]
    message = _library(brief)
    assert message is not None
    assert _http(http, brief) == message
    assert _cli(capsys, tmp_path, brief) == message
    with pytest.raises(InputError) as error:
        JobRequest(brief=brief, style_id=STYLE)
    assert str(error.value) == message
    if case == "over-long":
        assert str(MAX_BRIEF_CHARS) in message  # the web page shows this number


def test_the_longest_brief_is_accepted_everywhere(
    http: Client, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    brief = "golf mascot " + "x" * (MAX_BRIEF_CHARS - len("golf mascot "))
    assert len(brief) == MAX_BRIEF_CHARS
    assert _library(brief) is None
    assert _http(http, brief) is None
    assert _cli(capsys, tmp_path, brief) is None


def test_refine_instruction_limit_is_the_same_for_request_cli_and_http(
    http: Client, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    too_long = "y" * (MAX_INSTRUCTION_CHARS + 1)
    with pytest.raises(InputError) as error:
        RefineRequest(instruction=too_long)
    message = str(error.value)
    assert error.value.field == "instruction" and str(MAX_INSTRUCTION_CHARS) in message

    created = http.post(
        "/v1/jobs", json={"brief": "golf", "style_id": STYLE, "num_images": 1}, headers=ALICE
    )
    job_id = json.loads(created.get_data())["job_id"]
    response = http.post(
        f"/v1/jobs/{job_id}/sketches/0/refine", json={"instruction": too_long}, headers=ALICE
    )
    assert response.status_code == 422
    assert json.loads(response.get_data())["error"]["message"] == message

    code = main(["refine", str(tmp_path / "nowhere"), "1", too_long, "--offline"])
    assert code == 2
    assert capsys.readouterr().err.strip() == f"sketchgen: error: instruction: {message}"


def test_an_unknown_model_is_the_same_refusal_for_library_cli_and_http(http: Client) -> None:
    """One test of a model name (generate.models.check_model): 422 naming the field over
    HTTP, exit 2 on the command line, ConfigError in the library; never a job that fails
    every sketch at the model."""
    response = http.post(
        "/v1/jobs",
        json={"brief": "golf", "style_id": STYLE, "model": "nope"},
        headers={"Authorization": "Bearer dev:alice"},
    )
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert "unknown model 'nope'" in error["message"] and "flash" in error["message"]
    assert "Value error" not in error["message"]
