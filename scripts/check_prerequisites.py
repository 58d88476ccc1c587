#!/usr/bin/env python3
"""What `make test` needs from the machine, checked before anything runs (`make prerequisites`).

Each missing part is one line: what, and how to get it. Exit 1 if anything is missing.
Python's own packages are not checked here: `make install` builds them into .venv.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"


def _java_major() -> int | None:
    java = shutil.which("java")
    if java is None:
        return None
    result = subprocess.run(  # noqa: S603 - the machine's own java, fixed arguments
        [java, "-version"], capture_output=True, text=True, check=False
    )
    found = re.search(r'version "(\d+)', result.stderr + result.stdout)
    return int(found.group(1)) if found else None


def missing() -> list[str]:
    problems = []
    if sys.version_info < (3, 11):  # noqa: UP036 - checks the machine, not this code
        problems.append(
            f"Python 3.11+ is needed (this is {sys.version.split()[0]}): "
            "install it and run `make test PYTHON=python3.11`"
        )
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        problems.append(
            "the Google Cloud CLI (gcloud) is needed for the Firestore and Pub/Sub emulators: "
            "https://cloud.google.com/sdk/docs/install"
        )
    else:
        platform = Path(gcloud).resolve().parents[1] / "platform"
        for component, folder in (
            ("cloud-firestore-emulator", "cloud-firestore-emulator"),
            ("pubsub-emulator", "pubsub-emulator"),
        ):
            if not (platform / folder).is_dir():
                problems.append(
                    f"the gcloud component {component} is missing: "
                    f"`gcloud components install {component}` (or apt-get install "
                    f"google-cloud-cli-{component.removeprefix('cloud-')})"
                )
    major = _java_major()
    if major is None or major < 17:
        found = "no java" if major is None else f"java {major}"
        problems.append(
            f"Java 17+ is needed by the emulators ({found} found): "
            "`apt-get install openjdk-17-jre-headless`"
        )
    node = shutil.which("node")
    version = (
        subprocess.run(  # noqa: S603 - the machine's own node, fixed arguments
            [node, "--version"], capture_output=True, text=True, check=False
        ).stdout
        if node
        else ""
    )
    found_node = re.match(r"v(\d+)", version.strip())
    if not found_node or int(found_node.group(1)) < 20 or shutil.which("npm") is None:
        problems.append(
            "Node.js 20+ with npm is needed to bundle the page's Firebase SDK and run the "
            "Firebase Auth emulator (`make web`): `apt-get install nodejs npm`"
        )
    if not Path(CHROMIUM).exists():
        problems.append(f"Chromium is needed at {CHROMIUM} for the page tests: `make browser`")
    return problems


def main() -> int:
    problems = missing()
    for problem in problems:
        print(f"make test: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
