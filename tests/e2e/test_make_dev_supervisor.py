"""`make dev` as a developer starts and stops it: its own process (``python -m dev.topology``,
what ``make dev`` runs), found through ``topology.json``, each function's real environment
read, stopped the ways a developer does (SIGTERM, Ctrl-C, a kill -9).

Apart from tests/e2e/test_make_dev.py (the deployed shape on one long-lived topology) so the
two modules' topologies start on different test workers.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from dev.definition import REPO, load_definition
from dev.processes import free_port
from tests.helpers.auth import sign_up
from tests.helpers.waiting import wait_until

STOP_WITHIN_S = 15.0
_PLATFORM_ENV = {"THREADS", "GOOGLE_CLOUD_PROJECT"}
_EMULATOR_ENV = {
    "FIRESTORE_EMULATOR_HOST",
    "PUBSUB_EMULATOR_HOST",
    "STORAGE_EMULATOR_HOST",
    "FIREBASE_AUTH_EMULATOR_HOST",
}
_SYSTEM_ENV = {"PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "JAVA_HOME", "PYTHONPATH"}


class Supervisor:
    """`make dev` in a process of its own, as a developer starts it."""

    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dev.topology", "--port", str(self.port),
             "--data-dir", str(data_dir)],
            cwd=REPO, env={**os.environ, **env}, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        said = []  # anything printed before the ready line (warnings), for the failure message
        for line in self.process.stdout:
            if line.startswith("sketchgen dev ready"):
                break
            said.append(line)
        else:
            raise AssertionError("make dev ended before it was ready:\n" + "".join(said))
        self.ready_line = line
        self.said = "".join(said)
        self.manifest: dict[str, Any] = json.loads((data_dir / "topology.json").read_text())

    def pids(self) -> list[int]:
        return [int(p) for p in self.manifest["pids"]]

    def stop(self, signum: int) -> float:
        started = time.monotonic()
        os.kill(self.process.pid, signum)
        self.process.wait(timeout=60)
        return time.monotonic() - started


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ")[1][0] != "Z"  # zombies are gone


def _left(pids: list[int], within_s: float) -> list[int]:
    # Other processes' exits: polled, nothing signals this process when they are gone.
    with contextlib.suppress(AssertionError):
        wait_until(
            lambda: not [p for p in pids if _alive(p)],
            "processes outlived the topology",
            timeout_s=within_s,
            interval_s=0.1,
        )
    return [p for p in pids if _alive(p)]


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    pairs = (item.decode().split("=", 1) for item in raw if b"=" in item)
    return dict(pairs)


def test_it_says_how_to_connect_runs_each_function_as_deployed_and_always_stops(
    tmp_path: Path,
) -> None:
    # What a developer exports to try a setting locally reaches the functions the definition
    # gives it to; what the topology owns (the sign-in, where its parts are) stays its own.
    tried = {"SKETCHGEN_USER_ACTIVE_JOBS": "7", "SKETCHGEN_USER_DAILY_IMAGES": "11",
             "SKETCHGEN_MODEL_RPM": "30", "SKETCHGEN_QUOTA_WAIT_S": "45"}  # fmt: skip
    env = {"GEMINI_API_KEY": "developer-key", "GOOGLE_API_KEY": "", "SKETCHGEN_AUTH": "leak",
           "SKETCHGEN_NOT_IN_THE_DEFINITION": "1", "SKETCHGEN_USER_STREAM": "9",
           **tried}  # fmt: skip
    definition = load_definition()
    for round_, signum in enumerate((signal.SIGTERM, signal.SIGINT, signal.SIGTERM)):
        supervisor = Supervisor(tmp_path / f"round{round_}", env)
        manifest = supervisor.manifest
        assert str(tmp_path / f"round{round_}" / "topology.json") in supervisor.ready_line
        for key in ("api_url", "project_id", "firestore_emulator_host", "pubsub_emulator_host",
                    "storage_emulator_host", "auth_emulator_host"):  # fmt: skip
            assert manifest[key], key
        assert set(manifest["functions"]) == set(definition.functions)
        assert httpx.get(f"{manifest['api_url']}/healthz").status_code == 200

        if round_ == 0:  # each function gets exactly its cloud variables, nothing of the shell
            for name, entry in manifest["functions"].items():
                function = definition.functions[name]
                seen = set(_environ(entry["pid"])) - _SYSTEM_ENV - _EMULATOR_ENV - _PLATFORM_ENV
                expected = set(definition.env_names(name)) | set(function.secrets)
                assert seen <= expected, f"{name} has variables its cloud twin lacks"
                assert ("GEMINI_API_KEY" in seen) == ("GEMINI_API_KEY" in function.secrets)
                # The cloud's sign-in, not the shell's value nor a local-only mode.
                assert _environ(entry["pid"])["SKETCHGEN_AUTH"] == "firebase"
                for tried_name, value in tried.items():
                    if tried_name in expected:
                        assert _environ(entry["pid"])[tried_name] == value, (name, tried_name)
            assert "not using the exported SKETCHGEN_AUTH='leak'" in supervisor.said
            # A name no function reads is said so, a typo with the name it is near.
            assert (
                "not using the exported SKETCHGEN_NOT_IN_THE_DEFINITION='1': no function in "
                "infra/functions.yaml reads it\n" in supervisor.said
            )
            assert (
                "not using the exported SKETCHGEN_USER_STREAM='9': no function in "
                "infra/functions.yaml reads it (did you mean SKETCHGEN_USER_STREAMS?)"
            ) in supervisor.said
            # The settings take effect: the page's usage view shows the exported limits.
            _, token = sign_up(manifest["auth_emulator_host"], "tries@example.com")
            usage = httpx.get(
                f"{manifest['api_url']}/v1/usage",
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,  # the first request of a function on a loaded machine
            ).json()
            assert (usage["images_limit"], usage["active_jobs_limit"]) == (11, 7), usage

        pids = supervisor.pids()
        assert supervisor.stop(signum) < STOP_WITHIN_S
        assert _left(pids, 2.0) == [], f"left running after {signal.Signals(signum).name}"
        assert not (tmp_path / f"round{round_}" / "topology.json").exists()


def test_a_killed_supervisor_leaves_nothing_running(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path, {})
    pids = supervisor.pids()
    supervisor.stop(signal.SIGKILL)  # no clean-up code runs
    assert _left(pids, 10.0) == [], "processes outlived a killed make dev"
