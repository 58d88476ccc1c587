"""Start, wait for and stop the local processes of the dev topology and the tests.

Each child runs in its own session, so stopping it stops what it spawned too, and is told by
the kernel to die with its parent (``PR_SET_PDEATHSIG``, set by util-linux's ``setpriv``
before it execs the command): a supervisor killed outright leaves no emulator or function
behind. Not with a ``preexec_fn``: that makes Python fork instead of vfork, and a process
that already holds gRPC clients (the test runner) then runs gRPC's fork handlers in the
child, which abort it. The emulators run as their JVMs directly, not under gcloud's Python
wrapper, so the signal reaches the process that holds the port.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = [
    "ManagedProcess",
    "emulator_command",
    "free_port",
    "reap_stale",
    "stop_all",
    "wait_for_http",
]


def _dying_with_parent(command: list[str]) -> list[str]:
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--", *command] if setpriv else command


def _sdk_platform() -> Path:
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        raise RuntimeError(
            "the Google Cloud CLI (gcloud) with the Firestore and Pub/Sub emulators is needed: "
            "https://cloud.google.com/sdk/docs/install, then "
            "`gcloud components install cloud-firestore-emulator pubsub-emulator`"
        )
    return Path(gcloud).resolve().parents[1] / "platform"


# The emulators are short-lived and busy from their first second: the JIT's second tier (C2)
# cost more CPU compiling than its code saved. C1 only: the Firestore emulator ready on 0.8
# instead of 1.2 s of CPU, and 2,000 writes in 5.1 s and 5.8 s of CPU instead of 8.6 s and
# 13.8 s (two runs each, docs/BENCHMARKS.md).
_EMULATOR_JVM = ("-XX:TieredStopAtLevel=1",)


def emulator_command(name: str, port: int, *, rules: Path | None = None) -> list[str]:
    """The JVM command line of a Google Cloud CLI emulator (what ``gcloud beta emulators``
    runs under a wrapper process, and for Pub/Sub what its launcher script execs)."""
    platform = _sdk_platform()
    java = os.environ.get("JAVA", "java")
    if name == "firestore":
        jar = platform / "cloud-firestore-emulator" / "cloud-firestore-emulator.jar"
        command = [
            java, *_EMULATOR_JVM, "-Duser.language=en", "-cp", str(jar),
            "com.google.cloud.datastore.emulator.firestore.CloudFirestore", "start",
            "--host=127.0.0.1", f"--port={port}",
        ]  # fmt: skip
        return command + ([f"--rules={rules}"] if rules else [])
    if name == "pubsub":
        jars = sorted((platform / "pubsub-emulator" / "lib").glob("cloud-pubsub-emulator-*.jar"))
        if not jars:
            raise RuntimeError(
                "the Pub/Sub emulator is missing: `gcloud components install pubsub-emulator`"
            )
        return [java, *_EMULATOR_JVM, "-jar", str(jars[-1]), "--host=127.0.0.1", f"--port={port}"]
    raise ValueError(f"no emulator {name!r}")


_PORTS = random.Random()  # seeded from the OS: concurrent test workers pick apart


def _ephemeral_ports() -> tuple[int, int]:
    """The range the kernel hands outgoing connections their local ports from."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def free_port(*, rng: random.Random = _PORTS) -> int:
    """A port nobody listens on now, for a server started a moment later (``rng`` picks the
    candidates).

    Taken below the kernel's ephemeral range: a port from that range (what binding port 0
    returns) can be handed to any outgoing connection before the server binds it, and with
    a test suite's many clients it was ("Address already in use" from a make dev emulator,
    at 4 test workers). Below the range only another listener can take it."""
    low, _ = _ephemeral_ports()
    for _ in range(50):
        port = rng.randrange(10_000, low)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as sock:  # a crowded machine: any port the kernel gives
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_http(url: str, *, timeout_s: float, process: ManagedProcess | None = None) -> None:
    """Poll ``url`` until it answers anything below 500, the process dies, or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(
                f"{process.name} exited early with {process.poll()}; see {process.log_path}:\n"
                + process.log_tail()
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
                if response.status < 500:
                    return
        except urllib.error.HTTPError as error:
            if error.code < 500:
                return
        except OSError:
            pass
        time.sleep(0.2)
    where = f"; see {process.log_path}" if process else ""
    raise TimeoutError(f"{url} did not answer within {timeout_s:.0f} s{where}")


class ManagedProcess:
    def __init__(
        self,
        name: str,
        command: Sequence[str],
        *,
        log_dir: Path,
        env: Mapping[str, str] | None = None,
        inherit_env: bool = True,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.command = list(command)
        self.log_path = log_dir / f"{name}.log"
        self.env = {**(os.environ if inherit_env else {}), **(env or {})}
        self.cwd = cwd
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")  # a restarted process keeps its earlier lines
        self._process = subprocess.Popen(  # noqa: S603 - our own fixed commands
            _dying_with_parent(self.command),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.cwd,
            start_new_session=True,
        )
        log.close()
        return self

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def poll(self) -> int | None:
        return None if self._process is None else self._process.poll()

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def signal_group(self, signum: int) -> None:
        if self._process is not None and self._process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._process.pid, signum)

    def stop(self, timeout_s: float = 10.0) -> None:
        stop_all([self], timeout_s)

    def kill(self) -> None:
        """Die at once, like a crashed instance (no graceful shutdown)."""
        if self._process is not None and self._process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()


def stop_all(processes: Sequence[ManagedProcess], timeout_s: float = 8.0) -> None:
    """SIGTERM every group at once, wait together, SIGKILL what is left: bounded by
    ``timeout_s`` whatever the number of processes."""
    for process in processes:
        process.signal_group(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for process in processes:
        if process._process is None:
            continue
        try:
            process._process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.signal_group(signal.SIGKILL)
            process._process.wait()
    for process in processes:
        # The group may outlive its leader (a JVM under a wrapper): leave nothing behind.
        if process.pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)


def reap_stale(manifest: Path) -> None:
    """Stop what an earlier supervisor, killed before it could clean up, left running."""
    try:
        stale = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return
    supervisor = stale.get("supervisor_pid")
    if isinstance(supervisor, int) and _alive(supervisor) and supervisor != os.getpid():
        raise RuntimeError(f"make dev is already running (pid {supervisor}); see {manifest}")
    for pid in stale.get("pids", []):
        if isinstance(pid, int) and _is_ours(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
    manifest.unlink(missing_ok=True)


_OURS = (b"dev.function_host", b"gcp_storage_emulator", b"emulator")


def _is_ours(pid: int) -> bool:
    """Only a process that still runs one of our commands (pids are reused)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return any(marker in command for marker in _OURS)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
