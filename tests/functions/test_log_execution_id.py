"""Cloud Functions sets ``LOG_EXECUTION_ID=true``; functions-framework then reconfigures logging
(``dictConfig``) after it imported ``main.py``, which disabled every logger that existed by
then: the deployed functions logged nothing. Each function runs here, in its own process, as
the cloud runs it, and a logger made at import must still write its JSON line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

_PROBE = """
import logging, sys
import functions_framework
app = functions_framework.create_app(sys.argv[1], sys.argv[2])
# A module-level logger of the package, made when main.py was imported (before dictConfig).
logging.getLogger("sketchgen.api.core").error("probe after the framework configured logging")
"""


@pytest.mark.parametrize("function", ["stream", "generate", "sketch_worker"])
def test_json_logs_survive_log_execution_id(function: str, tmp_path: Path) -> None:
    source = target = function
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SKETCHGEN_", "GEMINI"))},
        "PYTHONPATH": f"{REPO / 'lib'}{os.pathsep}{REPO}",
        "LOG_EXECUTION_ID": "true",
        "SKETCHGEN_AUTH": "dev",
        "SKETCHGEN_JOB_STORE": "memory://",
        "SKETCHGEN_BLOB_URL": f"file://{tmp_path}",
        "SKETCHGEN_OFFLINE": "1",
        "SKETCHGEN_LOG_FORMAT": "json",
    }
    main = str(REPO / "functions" / source / "main.py")
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, target, main],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    probes = [line for line in lines if line.get("logger") == "sketchgen.api.core"]
    assert probes, done.stderr[-2000:]
    assert probes[0]["severity"] == "ERROR"
    assert probes[0]["message"] == "probe after the framework configured logging"
