"""examples/mobile_listener.py on the Firestore emulator: a mobile client's view of a job."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from sketchgen.adapters.gcp.firestore_job_store import FirestoreJobStore
from sketchgen.jobs import JobRequest, SketchState
from sketchgen.services import SketchService
from sketchgen.styles import StyleRegistry
from tests.helpers.fakes import CollectingQueue, FakeImageModel

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mobile_listener.py"
PROJECT = "sketchgen-mobile-example"


def _example() -> Any:
    spec = importlib.util.spec_from_file_location("mobile_listener", EXAMPLE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_listener_sees_each_sketch_end_then_the_final_state(
    firestore_emulator: str, tmp_path: Path
) -> None:
    from google.cloud import firestore

    from sketchgen.adapters.local.blob_store import LocalBlobStore

    client = firestore.Client(project=PROJECT)
    service = SketchService.from_ports(
        jobs=FirestoreJobStore(client), blobs=LocalBlobStore(tmp_path), queue=CollectingQueue(),
        model=FakeImageModel(), styles=StyleRegistry(),
    )  # fmt: skip
    job, _ = service.submission.submit_job(
        "phone-user", JobRequest(brief="golf mascot", style_id="loose-ink-mascot", num_images=3)
    )
    example = _example()
    seen: list[str] = []
    result: dict[str, Any] = {}

    def run() -> None:
        result.update(example.listen(client, job.job_id, lambda d: seen.append(
            example.describe(d)), timeout_s=60))  # fmt: skip

    listener = threading.Thread(target=run)
    listener.start()
    time.sleep(0.5)
    for task in service.queue.tasks:  # type: ignore[attr-defined]
        assert service.worker.run_sketch(task)
        time.sleep(0.3)  # let each change reach the listener on its own
    listener.join(30)
    assert result["status"] == "done" and result["owner_uid"] == "phone-user"
    assert seen[0].startswith("queued") and seen[-1] == "done [0:ok 1:ok 2:ok]"
    oks = [line.count(":ok") for line in seen]
    assert oks == sorted(oks) and 1 in oks and 2 in oks  # progress arrives in order
    assert set(result["sketches"]["0"]) >= set(SketchState.model_fields)

    command = [sys.executable, str(EXAMPLE), job.job_id, "--project", PROJECT, "--timeout", "20"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "final: done"

    missing = subprocess.run([*command[:2], "20990101_000000-abcdef", *command[3:]],
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    assert missing.returncode == 1 and "no job" in missing.stderr
