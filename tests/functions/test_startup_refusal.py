"""In the cloud (``K_SERVICE`` set) no process starts with dev or emulator sign-in: each
function under the functions-framework CLI, as deployed, and ``sketchgen serve``, exit
non-zero with one line naming the variable before they open a port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.helpers.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
FUNCTIONS = ["generate", "stream", "sketch_worker"]  # source folder == entry point
REFUSALS = {
    "SKETCHGEN_AUTH": {"SKETCHGEN_AUTH": "dev"},
    "FIREBASE_AUTH_EMULATOR_HOST": {
        "SKETCHGEN_AUTH": "firebase",
        "FIREBASE_AUTH_EMULATOR_HOST": "127.0.0.1:9099",
    },
}


def _env(**values: str) -> dict[str, str]:
    """This shell's environment without anything that configures sketchgen or the cloud."""
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("SKETCHGEN_", "FIREBASE_", "K_", "GEMINI_", "GOOGLE_"))
    }
    return {**inherited, "SKETCHGEN_PROJECT": "demo-sketchgen", **values}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _function(name: str, port: int, env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    command = [
        str(BIN / "functions-framework"),
        f"--target={name}",
        f"--source={REPO / 'functions' / name / 'main.py'}",
        "--host=127.0.0.1",
        f"--port={port}",
    ]
    # cwd away from the repo: Settings also reads a .env file from the working directory.
    return subprocess.Popen(
        command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _lines(*outputs: str) -> list[str]:
    return [line for output in outputs for line in output.splitlines() if line.strip()]


@pytest.mark.parametrize("variable", list(REFUSALS))
@pytest.mark.parametrize("name", FUNCTIONS)
def test_a_function_refuses_to_start(name: str, variable: str, tmp_path: Path) -> None:
    env = _env(K_SERVICE=name, **REFUSALS[variable])
    process = _function(name, _free_port(), env, tmp_path)
    try:
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode != 0
    lines = _lines(out, err)
    assert len(lines) == 1, lines
    assert variable in lines[0] and "K_SERVICE" in lines[0] and "refusing to start" in lines[0]


@pytest.mark.parametrize("name", FUNCTIONS)
def test_a_key_the_sdk_cannot_use_stops_the_function_at_start(name: str, tmp_path: Path) -> None:
    """Refused once, as the instance starts, naming the variable: not a per-sketch
    'unexpected ValueError from the Gemini SDK' (issue 12). The key itself is never printed."""
    env = _env(SKETCHGEN_AUTH="firebase", GEMINI_API_KEY="AIza with spaces")
    process = _function(name, _free_port(), env, tmp_path)
    try:
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode != 0
    lines = _lines(out, err)
    assert len(lines) == 1, lines
    assert "GEMINI_API_KEY" in lines[0] and "not a usable API key" in lines[0]
    assert "with spaces" not in lines[0]


def test_the_refusal_is_one_json_line_with_cloud_logging(tmp_path: Path) -> None:
    env = _env(K_SERVICE="generate", SKETCHGEN_AUTH="dev", SKETCHGEN_LOG_FORMAT="json")
    process = _function("generate", _free_port(), env, tmp_path)
    try:
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode != 0
    [line] = _lines(out, err)
    assert line.startswith('{"severity": "CRITICAL"') and "SKETCHGEN_AUTH" in line


@pytest.mark.parametrize(
    "env",
    [
        {"K_SERVICE": "generate", "SKETCHGEN_AUTH": "firebase"},  # as deployed
        {"SKETCHGEN_AUTH": "dev"},  # local: make dev, tests
    ],
    ids=["cloud-firebase", "local-dev"],
)
def test_the_same_function_starts_otherwise(env: dict[str, str], tmp_path: Path) -> None:
    """The control: what is refused above is the sign-in, not the start-up itself."""
    port = _free_port()
    process = _function("generate", port, _env(**env), tmp_path)
    try:

        def serving() -> bool:
            assert process.poll() is None, process.communicate()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    assert r.status == 200
                    return True
            except urllib.error.HTTPError:
                raise  # it is serving, but not as it should
            except OSError:  # not listening yet
                return False

        wait_until(serving, "the function did not start", timeout_s=60, interval_s=0.2)
    finally:
        process.terminate()
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


@pytest.mark.parametrize("variable", list(REFUSALS))
def test_sketchgen_serve_refuses_to_start_in_the_cloud(variable: str, tmp_path: Path) -> None:
    env = _env(K_SERVICE="sketchgen", **REFUSALS[variable])
    if variable == "SKETCHGEN_AUTH":
        del env["SKETCHGEN_AUTH"]  # serve's own default is dev auth
    command = [
        str(BIN / "sketchgen"),
        "serve",
        "--port",
        str(_free_port()),
        "--data-dir",
        str(tmp_path / "data"),
        "--offline",
    ]
    done = subprocess.run(
        command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith(f"sketchgen: error: {variable}: ")
    assert "K_SERVICE" in done.stderr
